//! [`AzureConfig`]: what an `azure` session's `config` holds.

use serde::{Deserialize, Serialize};
use session_core::{Error, Result};
use url::Url;

/// The public-cloud Entra ID authority host.
pub const PUBLIC_CLOUD_AUTHORITY: &str = "https://login.microsoftonline.com";

/// The test-only variable [`AzureConfig::from_env`] reads to allow an
/// `http://` authority on a loopback address.
const INSECURE_LOOPBACK_ENV: &str = "SESSION_AZURE_INSECURE_LOOPBACK_AUTHORITY";

/// The scope asked for when the session names none: Azure Resource Manager.
pub const ARM_DEFAULT_SCOPE: &str = "https://management.azure.com/.default";

/// How the session signs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum CredentialKind {
    /// A service principal's client secret (OAuth client credentials grant;
    /// no user, no refresh token). The secret is in the secret store under
    /// [`CLIENT_SECRET`](crate::CLIENT_SECRET).
    ClientSecret,
    /// A user signs in with the device code flow on another device; the
    /// refresh token is kept in the secret store under
    /// [`REFRESH_TOKEN`](crate::REFRESH_TOKEN).
    #[default]
    DeviceCode,
    /// An existing refresh token, put in the secret store under
    /// [`REFRESH_TOKEN`](crate::REFRESH_TOKEN) by the caller.
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

    /// The scope asked for.
    pub fn scope(&self) -> &str {
        self.scope.as_deref().unwrap_or(ARM_DEFAULT_SCOPE)
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
