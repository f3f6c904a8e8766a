//! Leapp's `azure` sessions as ours, for
//! [`session_core::import::leapp::plan`].

use session_core::SessionType;
use session_core::import::leapp::{LeappMapper, LeappSession, LeappWorkspace, Mapped};

use crate::{AZURE_CLI_CLIENT_ID, AzureConfig, CredentialKind};

/// Maps Leapp's `azure` sessions: Leapp signed in through the Azure CLI
/// and made the subscription the CLI's, so the session is a device-code
/// sign-in with the CLI's client id, for the tenant of its integration and
/// its subscription, made visible to `az` (`azureCli`). Leapp's sign-in is
/// not carried over: the first start signs in again.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeappAzureMapper;

impl LeappMapper for LeappAzureMapper {
    fn leapp_types(&self) -> &[&str] {
        &["azure"]
    }

    fn map(&self, ws: &LeappWorkspace, leapp: &LeappSession) -> Result<Mapped, String> {
        let integration = leapp
            .azure_integration_id
            .as_deref()
            .and_then(|id| ws.azure_integration(id));
        let tenant = leapp
            .tenant_id
            .clone()
            .or_else(|| integration.map(|i| i.tenant_id.clone()))
            .filter(|t| !t.is_empty())
            .ok_or("it has no tenantId")?;
        let subscription = leapp
            .subscription_id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or("it has no subscriptionId")?;
        let config = AzureConfig::new(tenant, AZURE_CLI_CLIENT_ID)
            .with_credential(CredentialKind::DeviceCode)
            .with_subscription_id(subscription)
            .with_azure_cli(true);
        config.validate().map_err(|e| e.to_string())?;
        let config = serde_json::to_value(&config).map_err(|e| e.to_string())?;
        Ok(Mapped::new(SessionType::Azure, config).with_to_do(
            "sign in again at the first start (a device code; Leapp's sign-in is not carried over)",
        ))
    }
}
