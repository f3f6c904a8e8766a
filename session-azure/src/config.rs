//! [`AzureConfig`]: what an `azure` session's `config` holds.

use serde::{Deserialize, Serialize};
use session_core::{Error, Result};
use url::Url;

use crate::account::SignedInAccount;

/// The public-cloud Entra ID authority host.
pub const PUBLIC_CLOUD_AUTHORITY: &str = "https://login.microsoftonline.com";

/// The test-only variable [`AzureConfig::from_env`] reads to allow an
/// `http://` authority on a loopback address.
const INSECURE_LOOPBACK_ENV: &str = "SESSION_AZURE_INSECURE_LOOPBACK_AUTHORITY";

/// The scope asked for when the session names none: Azure Resource Manager.
pub const ARM_DEFAULT_SCOPE: &str = "https://management.azure.com/.default";

/// The Azure CLI's own application (client) id, a public client every
/// tenant knows. The CLI looks up cached tokens only under this id, so an
/// [`azure_cli`](AzureConfig::azure_cli) session must sign in with it.
pub const AZURE_CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// The scope the Azure CLI asks for Azure Resource Manager (its cloud's
/// `active_directory_resource_id` + `/.default`, hence the double slash);
/// the default scope of an [`azure_cli`](AzureConfig::azure_cli) session,
/// so that `az` commands find the session's token.
pub const AZURE_CLI_ARM_SCOPE: &str = "https://management.core.windows.net//.default";

/// How the session signs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum CredentialKind {
    /// A service principal's client secret (OAuth client credentials grant;
    /// no user, no refresh token). The secret is in the secret store under
    /// [`CLIENT_SECRET`](crate::secret_names::CLIENT_SECRET).
    ClientSecret,
    /// A user signs in with the device code flow on another device; the
    /// refresh token is kept in the secret store under
    /// [`REFRESH_TOKEN`](crate::secret_names::REFRESH_TOKEN).
    #[default]
    DeviceCode,
    /// An existing refresh token, put in the secret store under
    /// [`REFRESH_TOKEN`](crate::secret_names::REFRESH_TOKEN) by the caller.
    RefreshToken,
}

/// The settings of an `azure` session, in its `config` (camelCase keys).
/// The Azure location (region) is the session's `region`.
///
/// ```
/// use session_azure::{AzureConfig, CredentialKind};
/// let config = AzureConfig::new("contoso.onmicrosoft.com", "11111111-2222-3333-4444-555555555555")
///     .with_credential(CredentialKind::ClientSecret)
///     .with_subscription_id("00000000-0000-0000-0000-000000000000");
/// config.validate().unwrap();
/// assert_eq!(config.token_url().unwrap().as_str(),
///     "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AzureConfig {
    /// The directory: a tenant GUID or verified domain; `organizations` or
    /// `common` only for user sign-in.
    pub tenant_id: String,
    /// The application (client) id.
    pub client_id: String,
    /// The subscription the session is for (exported as
    /// `AZURE_SUBSCRIPTION_ID`); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// The Entra ID authority host; the public cloud when absent. Sovereign
    /// clouds: `https://login.microsoftonline.us`,
    /// `https://login.chinacloudapi.cn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_host: Option<String>,
    /// How the session signs in.
    #[serde(default)]
    pub credential: CredentialKind,
    /// The scope of the session's access token; [`ARM_DEFAULT_SCOPE`] when
    /// absent. One resource, as `<resource>/.default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Allow an `http://` authority on a loopback address (test servers
    /// only). Refused for any other host.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_insecure_loopback_authority: bool,
    /// Make the session visible to the Azure CLI (`az`): start and rotate
    /// write the subscription into `azureProfile.json` and the access token
    /// into the CLI's MSAL token cache, stop removes them (see
    /// `session_azure::azure_cli`, feature `azure-cli`). Only for user
    /// sign-ins (device code, refresh token) with the CLI's client id
    /// [`AZURE_CLI_CLIENT_ID`] and a [`subscription_id`](Self::subscription_id).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub azure_cli: bool,
    /// The Azure CLI cloud (`az cloud list`) the authority belongs to; `az`
    /// shows only the subscriptions of its current cloud. Derived for the
    /// public cloud (`AzureCloud`), `login.microsoftonline.us`
    /// (`AzureUSGovernment`) and `login.chinacloudapi.cn`
    /// (`AzureChinaCloud`); required for any other authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_cli_cloud: Option<String>,
}

/// What start and rotate of an `azure` session record in its
/// [`state`](session_core::Session::state) (camelCase keys; cleared when the
/// session becomes `inactive`). Holds no secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AzureState {
    /// The user a device-code or refresh-token session signed in as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_in_account: Option<SignedInAccount>,
    /// What the Azure CLI sink changed, so that stop undoes exactly that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_cli_published: Option<AzureCliPublished>,
}

/// What an [`azure_cli`](AzureConfig::azure_cli) session wrote into the
/// Azure CLI's files, recorded in its state so that stop removes exactly
/// that and gives back what was there before. Holds no secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AzureCliPublished {
    /// The directory of the files (`$AZURE_CONFIG_DIR` or `~/.azure` at
    /// the first publish).
    pub dir: String,
    /// The subscription entry written into `azureProfile.json`.
    pub subscription_id: String,
    /// The entry with that id that was there before (the user's own `az
    /// login`), put back on stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_entry: Option<serde_json::Value>,
    /// The subscription that was the default before, made the default again
    /// on stop if it is still there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_default: Option<String>,
    /// The MSAL cache key of the access token written.
    pub access_token_key: String,
    /// The MSAL cache key of the account, when the sink added it (an
    /// account that was there before stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_account_key: Option<String>,
    /// The MSAL cache key of the app metadata, when the sink added it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_app_metadata_key: Option<String>,
}

impl AzureConfig {
    /// A device-code configuration for `client_id` in `tenant_id` on the
    /// public cloud.
    pub fn new(tenant_id: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            ..Self::default()
        }
    }

    /// A configuration from the variables the Azure SDKs read:
    /// `AZURE_TENANT_ID` and `AZURE_CLIENT_ID` (required),
    /// `AZURE_SUBSCRIPTION_ID`, `AZURE_AUTHORITY_HOST`; the kind is
    /// [`CredentialKind::ClientSecret`] when `AZURE_CLIENT_SECRET` is set
    /// (its value is returned separately, for the secret store), else
    /// [`CredentialKind::DeviceCode`]. For a loopback test server,
    /// `SESSION_AZURE_INSECURE_LOOPBACK_AUTHORITY=1` sets
    /// [`allow_insecure_loopback_authority`](Self::allow_insecure_loopback_authority).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the missing or invalid variable.
    pub fn from_env() -> Result<(Self, Option<session_core::Secret>)> {
        Self::from_env_iter(std::env::vars())
    }

    /// [`from_env`](Self::from_env) over the given variables (for tests and
    /// embedding).
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_env_iter(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Option<session_core::Secret>)> {
        let vars: std::collections::HashMap<String, String> = vars
            .into_iter()
            .filter(|(k, v)| {
                (k.starts_with("AZURE_") || k == INSECURE_LOOPBACK_ENV) && !v.trim().is_empty()
            })
            .collect();
        let required = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_owned())
                .ok_or_else(|| Error::invalid_input(name, "is not set"))
        };
        let mut config = Self::new(required("AZURE_TENANT_ID")?, required("AZURE_CLIENT_ID")?);
        config.subscription_id = vars
            .get("AZURE_SUBSCRIPTION_ID")
            .map(|v| v.trim().to_owned());
        config.authority_host = vars
            .get("AZURE_AUTHORITY_HOST")
            .map(|v| v.trim().to_owned());
        let secret = vars
            .get("AZURE_CLIENT_SECRET")
            .map(|v| session_core::Secret::new(v.as_str()));
        if secret.is_some() {
            config.credential = CredentialKind::ClientSecret;
        }
        config.allow_insecure_loopback_authority = vars
            .get(INSECURE_LOOPBACK_ENV)
            .is_some_and(|v| v.trim() == "1");
        config.validate().map_err(|e| match e {
            Error::InvalidInput { field, reason } => {
                let variable = match field.as_str() {
                    "tenantId" => Some("AZURE_TENANT_ID"),
                    "clientId" => Some("AZURE_CLIENT_ID"),
                    "subscriptionId" => Some("AZURE_SUBSCRIPTION_ID"),
                    "authorityHost" => Some("AZURE_AUTHORITY_HOST"),
                    _ => None,
                };
                Error::InvalidInput {
                    field: variable.map_or(field, str::to_owned),
                    reason,
                }
            }
            other => other,
        })?;
        Ok((config, secret))
    }

    /// Sets [`credential`](Self::credential).
    pub fn with_credential(mut self, credential: CredentialKind) -> Self {
        self.credential = credential;
        self
    }

    /// Sets [`subscription_id`](Self::subscription_id).
    pub fn with_subscription_id(mut self, subscription_id: impl Into<String>) -> Self {
        self.subscription_id = Some(subscription_id.into());
        self
    }

    /// Sets [`authority_host`](Self::authority_host).
    pub fn with_authority_host(mut self, host: impl Into<String>) -> Self {
        self.authority_host = Some(host.into());
        self
    }

    /// Sets [`scope`](Self::scope).
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets [`allow_insecure_loopback_authority`](Self::allow_insecure_loopback_authority).
    pub fn with_insecure_loopback_authority(mut self, allow: bool) -> Self {
        self.allow_insecure_loopback_authority = allow;
        self
    }

    /// Sets [`azure_cli`](Self::azure_cli).
    pub fn with_azure_cli(mut self, azure_cli: bool) -> Self {
        self.azure_cli = azure_cli;
        self
    }

    /// Sets [`azure_cli_cloud`](Self::azure_cli_cloud).
    pub fn with_azure_cli_cloud(mut self, cloud: impl Into<String>) -> Self {
        self.azure_cli_cloud = Some(cloud.into());
        self
    }

    /// The scope asked for: [`scope`](Self::scope), else
    /// [`AZURE_CLI_ARM_SCOPE`] for an [`azure_cli`](Self::azure_cli)
    /// session, else [`ARM_DEFAULT_SCOPE`].
    pub fn scope(&self) -> &str {
        match &self.scope {
            Some(scope) => scope,
            None if self.azure_cli => AZURE_CLI_ARM_SCOPE,
            None => ARM_DEFAULT_SCOPE,
        }
    }

    /// The Azure CLI cloud name of the session's authority (see
    /// [`azure_cli_cloud`](Self::azure_cli_cloud)).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] (`azureCliCloud`) for another authority
    /// without a cloud name, or an invalid name.
    pub fn azure_cli_cloud_name(&self) -> Result<String> {
        if let Some(name) = &self.azure_cli_cloud {
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(Error::invalid_input(
                    "azureCliCloud",
                    format!("{name:?} must be an Azure CLI cloud name (letters, digits, '-', '_')"),
                ));
            }
            return Ok(name.clone());
        }
        let authority = self.authority()?;
        match authority.host_str().unwrap_or_default() {
            "login.microsoftonline.com" => Ok("AzureCloud".into()),
            "login.microsoftonline.us" => Ok("AzureUSGovernment".into()),
            "login.chinacloudapi.cn" => Ok("AzureChinaCloud".into()),
            other => Err(Error::invalid_input(
                "azureCliCloud",
                format!(
                    "the authority {other} is not a cloud the Azure CLI knows by default; name the `az cloud` it is registered as"
                ),
            )),
        }
    }

    /// The authority's host name, lower-case and without the port, as MSAL
    /// records it in its token cache (`environment`).
    pub fn authority_environment(&self) -> Result<String> {
        let authority = self.authority()?;
        Ok(authority
            .host_str()
            .unwrap_or_default()
            .to_ascii_lowercase())
    }

    /// Checks every field; errors name the field (`tenantId`, `clientId`,
    /// `subscriptionId`, `authorityHost`, `scope`).
    pub fn validate(&self) -> Result<()> {
        validate_tenant(&self.tenant_id)?;
        if self.credential == CredentialKind::ClientSecret
            && matches!(
                self.tenant_id.to_ascii_lowercase().as_str(),
                "common" | "organizations" | "consumers"
            )
        {
            return Err(Error::invalid_input(
                "tenantId",
                format!(
                    "{:?} is for user sign-in; a client secret needs a concrete tenant",
                    self.tenant_id
                ),
            ));
        }
        validate_guid_like("clientId", &self.client_id)?;
        if let Some(sub) = &self.subscription_id {
            validate_guid_like("subscriptionId", sub)?;
        }
        let scope = self.scope();
        if scope.trim().is_empty() || scope.chars().any(|c| c.is_control() || c == ' ') {
            return Err(Error::invalid_input(
                "scope",
                format!("{scope:?} must be one `<resource>/.default` scope without spaces"),
            ));
        }
        self.authority()?;
        if self.azure_cli {
            self.validate_azure_cli()?;
        }
        Ok(())
    }

    /// The rules of [`azure_cli`](Self::azure_cli), each naming the field.
    fn validate_azure_cli(&self) -> Result<()> {
        if !cfg!(feature = "azure-cli") {
            return Err(Error::invalid_input(
                "azureCli",
                "this build of session-azure has no Azure CLI sink (enable its feature `azure-cli`; sessionctl has it by default)",
            ));
        }
        if self.credential == CredentialKind::ClientSecret {
            return Err(Error::invalid_input(
                "azureCli",
                "the Azure CLI sink is for user sign-ins (device code, refresh token): for a service principal the CLI needs the client secret in its own plaintext file, which this SDK does not write; use `sessionctl azure env|exec` instead",
            ));
        }
        if !self.client_id.eq_ignore_ascii_case(AZURE_CLI_CLIENT_ID) {
            return Err(Error::invalid_input(
                "clientId",
                format!(
                    "an azureCli session must sign in with the Azure CLI's client id {AZURE_CLI_CLIENT_ID}: the CLI ignores tokens issued to other applications"
                ),
            ));
        }
        if self.subscription_id.is_none() {
            return Err(Error::invalid_input(
                "subscriptionId",
                "an azureCli session needs the subscription to show in `az account list`",
            ));
        }
        self.azure_cli_cloud_name()?;
        Ok(())
    }

    /// The authority host, checked: `https://`, or `http://` on a loopback
    /// address when explicitly allowed.
    pub fn authority(&self) -> Result<Url> {
        let text = self
            .authority_host
            .as_deref()
            .unwrap_or(PUBLIC_CLOUD_AUTHORITY)
            .trim();
        let url = Url::parse(text).map_err(|e| {
            Error::invalid_input("authorityHost", format!("{text:?} is not a URL: {e}"))
        })?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure_loopback_authority && loopback => {}
            "http" if self.allow_insecure_loopback_authority => {
                return Err(Error::invalid_input(
                    "authorityHost",
                    "http:// is allowed only on a loopback address (127.0.0.1, ::1, localhost)",
                ));
            }
            "http" => {
                return Err(Error::invalid_input(
                    "authorityHost",
                    "must be https:// (http:// only for a loopback test server, with allowInsecureLoopbackAuthority)",
                ));
            }
            other => {
                return Err(Error::invalid_input(
                    "authorityHost",
                    format!("scheme {other:?} is not https"),
                ));
            }
        }
        if url.host_str().is_none_or(str::is_empty)
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(Error::invalid_input(
                "authorityHost",
                "must be a bare scheme://host[:port] URL",
            ));
        }
        let mut base = url;
        base.set_path("/");
        Ok(base)
    }

    fn endpoint(&self, leaf: &str) -> Result<Url> {
        validate_tenant(&self.tenant_id)?;
        self.authority()?
            .join(&format!("{}/oauth2/v2.0/{leaf}", self.tenant_id))
            .map_err(|e| Error::invalid_input("tenantId", e.to_string()))
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> Result<Url> {
        self.endpoint("token")
    }

    /// `{authority}/{tenant}/oauth2/v2.0/devicecode`.
    pub fn device_code_url(&self) -> Result<Url> {
        self.endpoint("devicecode")
    }
}

/// Alphanumerics, `.` and `-` (the rule `azure_identity` applies), so the
/// tenant can go into a URL path as is.
fn validate_tenant(tenant: &str) -> Result<()> {
    if tenant.is_empty()
        || tenant.len() > 256
        || !tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(Error::invalid_input(
            "tenantId",
            format!("{tenant:?} must be a tenant GUID or domain (letters, digits, '.', '-')"),
        ));
    }
    Ok(())
}

/// Client and subscription ids: GUIDs on Entra; test servers use other
/// names, so accept letters, digits, `-`, `_` and `.`.
fn validate_guid_like(field: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || value.len() > 128
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(Error::invalid_input(
            field,
            format!("{value:?} must be an id (letters, digits, '-', '_', '.')"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_are_named() {
        let ok = AzureConfig::new("contoso.onmicrosoft.com", "app-1");
        ok.validate().unwrap();
        for (config, field) in [
            (AzureConfig::new("", "app"), "tenantId"),
            (AzureConfig::new("a/b", "app"), "tenantId"),
            (AzureConfig::new("t", "a b"), "clientId"),
            (
                AzureConfig::new("common", "app").with_credential(CredentialKind::ClientSecret),
                "tenantId",
            ),
            (ok.clone().with_subscription_id("x/y"), "subscriptionId"),
            (ok.clone().with_scope("a b"), "scope"),
            (
                ok.clone().with_authority_host("http://login.example"),
                "authorityHost",
            ),
            (
                ok.clone()
                    .with_authority_host("http://login.example")
                    .with_insecure_loopback_authority(true),
                "authorityHost",
            ),
            (ok.clone().with_authority_host("ftp://x"), "authorityHost"),
            (
                ok.clone().with_authority_host("https://u:p@x"),
                "authorityHost",
            ),
        ] {
            let err = config.validate().unwrap_err();
            assert!(
                err.to_string().contains(&format!("invalid {field}")),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn azure_cli_rules_name_the_field() {
        let ok = AzureConfig::new("t1", AZURE_CLI_CLIENT_ID)
            .with_subscription_id("sub-1")
            .with_azure_cli(true);
        let cases = [
            (
                ok.clone().with_credential(CredentialKind::ClientSecret),
                "azureCli",
            ),
            (
                AzureConfig::new("t1", "app-1")
                    .with_subscription_id("sub-1")
                    .with_azure_cli(true),
                "clientId",
            ),
            (
                AzureConfig::new("t1", AZURE_CLI_CLIENT_ID).with_azure_cli(true),
                "subscriptionId",
            ),
            (
                ok.clone()
                    .with_authority_host("http://127.0.0.1:1")
                    .with_insecure_loopback_authority(true),
                "azureCliCloud",
            ),
            (ok.clone().with_azure_cli_cloud("a b"), "azureCliCloud"),
        ];
        if cfg!(feature = "azure-cli") {
            ok.validate().unwrap();
            assert_eq!(ok.scope(), AZURE_CLI_ARM_SCOPE);
            assert_eq!(ok.azure_cli_cloud_name().unwrap(), "AzureCloud");
            let gov = ok
                .clone()
                .with_authority_host("https://login.microsoftonline.us");
            assert_eq!(gov.azure_cli_cloud_name().unwrap(), "AzureUSGovernment");
            for (config, field) in cases {
                let err = config.validate().unwrap_err();
                assert!(
                    err.to_string().contains(&format!("invalid {field}")),
                    "{field}: {err}"
                );
            }
        } else {
            let err = ok.validate().unwrap_err();
            assert!(err.to_string().contains("feature `azure-cli`"), "{err}");
        }
    }

    #[test]
    fn from_env_reads_the_azure_variables() {
        let vars = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let (c, secret) = AzureConfig::from_env_iter(vars(&[
            ("AZURE_TENANT_ID", "t1"),
            ("AZURE_CLIENT_ID", "app"),
            ("AZURE_CLIENT_SECRET", "s3cret"),
            ("AZURE_SUBSCRIPTION_ID", "sub-1"),
            ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us"),
        ]))
        .unwrap();
        assert_eq!(c.credential, CredentialKind::ClientSecret);
        assert_eq!(secret.unwrap().expose(), "s3cret");
        assert_eq!(c.subscription_id.as_deref(), Some("sub-1"));
        let (c, secret) = AzureConfig::from_env_iter(vars(&[
            ("AZURE_TENANT_ID", "t1"),
            ("AZURE_CLIENT_ID", "app"),
        ]))
        .unwrap();
        assert_eq!(c.credential, CredentialKind::DeviceCode);
        assert!(secret.is_none());
        let err = AzureConfig::from_env_iter(vars(&[("AZURE_TENANT_ID", "t1")])).unwrap_err();
        assert!(err.to_string().contains("AZURE_CLIENT_ID"), "{err}");
        let err = AzureConfig::from_env_iter(vars(&[
            ("AZURE_TENANT_ID", "t1"),
            ("AZURE_CLIENT_ID", "app"),
            ("AZURE_AUTHORITY_HOST", "http://login.example"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("AZURE_AUTHORITY_HOST"), "{err}");
    }

    #[test]
    fn endpoints_follow_the_authority_and_tenant() {
        let c = AzureConfig::new("tenant-1", "app")
            .with_authority_host("http://127.0.0.1:8080")
            .with_insecure_loopback_authority(true);
        c.validate().unwrap();
        assert_eq!(
            c.device_code_url().unwrap().as_str(),
            "http://127.0.0.1:8080/tenant-1/oauth2/v2.0/devicecode"
        );
        let gov =
            AzureConfig::new("t", "app").with_authority_host("https://login.microsoftonline.us/");
        assert_eq!(
            gov.token_url().unwrap().as_str(),
            "https://login.microsoftonline.us/t/oauth2/v2.0/token"
        );
        assert_eq!(gov.scope(), ARM_DEFAULT_SCOPE);
    }
}
