//! Leapp's workspace, as its JSON has it (see the `leapp` module docs).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// A Leapp workspace, read-only: what an importer needs of it. Leapp's
/// own settings (notifications, plugins, proxy…) are not kept.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct LeappWorkspace {
    /// `_workspaceVersion` (5 to 7 are read).
    pub version: u32,
    /// Every session, in Leapp's order.
    pub sessions: Vec<LeappSession>,
    /// AWS IAM Identity Center integrations, which SSO role sessions name.
    pub aws_sso_integrations: Vec<LeappSsoIntegration>,
    /// Azure integrations, which Azure sessions name.
    pub azure_integrations: Vec<LeappAzureIntegration>,
    /// Named profiles, which AWS sessions name.
    pub profiles: Vec<LeappProfile>,
    /// SAML identity provider URLs, which federated sessions name.
    pub idp_urls: Vec<LeappIdpUrl>,
    /// `_defaultRegion` (Leapp's default `us-east-1`).
    pub default_region: Option<String>,
    /// `_defaultLocation`, Azure's (Leapp's default `eastus`).
    pub default_location: Option<String>,
}

impl LeappWorkspace {
    /// The session with `id`.
    pub fn session(&self, id: &str) -> Option<&LeappSession> {
        self.sessions.iter().find(|s| s.session_id == id)
    }

    /// The profile with `id`.
    pub fn profile(&self, id: &str) -> Option<&LeappProfile> {
        self.profiles.iter().find(|p| p.id == id)
    }

    /// The IdP URL with `id`.
    pub fn idp_url(&self, id: &str) -> Option<&LeappIdpUrl> {
        self.idp_urls.iter().find(|p| p.id == id)
    }

    /// The SSO integration with `id`.
    pub fn aws_sso_integration(&self, id: &str) -> Option<&LeappSsoIntegration> {
        self.aws_sso_integrations.iter().find(|p| p.id == id)
    }

    /// The Azure integration with `id`.
    pub fn azure_integration(&self, id: &str) -> Option<&LeappAzureIntegration> {
        self.azure_integrations.iter().find(|p| p.id == id)
    }
}

/// One Leapp session: the fields every type has, and those of each type
/// (absent where the type has none). Other fields are in `extra`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LeappSession {
    /// Leapp's id (a UUID).
    pub session_id: String,
    /// The name (for SSO roles, the AWS account's name).
    pub session_name: String,
    /// `awsIamUser`, `awsIamRoleChained`, `awsIamRoleFederated`,
    /// `awsSsoRole`, `azure`, `localstack`, or a type this reader does not
    /// know.
    #[serde(rename = "type")]
    pub session_type: String,
    /// The AWS region, or for `azure` the location.
    #[serde(default)]
    pub region: Option<String>,
    /// 0 inactive, 1 pending, 2 active.
    #[serde(default)]
    pub status: Option<u8>,
    /// The named profile (AWS types).
    #[serde(default)]
    pub profile_id: Option<String>,
    /// `awsIamUser`: the MFA device's serial or ARN.
    #[serde(default)]
    pub mfa_device: Option<String>,
    /// `awsIamRoleChained`: the session whose credentials assume the role.
    #[serde(default)]
    pub parent_session_id: Option<String>,
    /// `awsIamRoleChained`: the role session name.
    #[serde(default)]
    pub role_session_name: Option<String>,
    /// The role (chained, federated; for `awsSsoRole` Leapp's
    /// `arn:aws:iam::<account>/<role>` form).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// `awsIamRoleFederated`: the IdP URL's id.
    #[serde(default)]
    pub idp_url_id: Option<String>,
    /// `awsIamRoleFederated`: the SAML provider's ARN.
    #[serde(default)]
    pub idp_arn: Option<String>,
    /// `awsSsoRole`: the integration's id.
    #[serde(default)]
    pub aws_sso_configuration_id: Option<String>,
    /// `awsSsoRole`: the user's e-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// `azure`: the subscription.
    #[serde(default)]
    pub subscription_id: Option<String>,
    /// `azure`: the tenant.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// `azure`: the integration's id.
    #[serde(default)]
    pub azure_integration_id: Option<String>,
    /// Every other field, as Leapp wrote it.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An AWS IAM Identity Center integration.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LeappSsoIntegration {
    /// Leapp's id.
    pub id: String,
    /// The name the user gave it.
    #[serde(default)]
    pub alias: String,
    /// The start URL (after Leapp followed its redirects).
    pub portal_url: String,
    /// The Identity Center region.
    pub region: String,
}

/// An Azure integration (one tenant).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LeappAzureIntegration {
    /// Leapp's id.
    pub id: String,
    /// The name the user gave it.
    #[serde(default)]
    pub alias: String,
    /// The tenant.
    pub tenant_id: String,
    /// The location.
    #[serde(default)]
    pub region: Option<String>,
}

/// A named profile.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct LeappProfile {
    /// Leapp's id.
    pub id: String,
    /// The profile name (`default` is Leapp's default profile).
    pub name: String,
}

/// A SAML identity provider's URL.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct LeappIdpUrl {
    /// Leapp's id.
    pub id: String,
    /// The URL.
    pub url: String,
}

/// The workspace's top-level keys, read in document order with their
/// leading underscore dropped: Leapp's migrations wrote some keys without
/// it, and its loader lets the later spelling win.
pub(crate) struct TopLevel(pub(crate) BTreeMap<String, Value>);

impl<'de> Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopLevel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Leapp workspace object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<TopLevel, M::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: Value = map.next_value()?;
                    let name = key.strip_prefix('_').unwrap_or(&key).to_owned();
                    out.insert(name, value);
                }
                Ok(TopLevel(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl TopLevel {
    /// The field `name` (without underscore), or its default when absent or
    /// null.
    pub(crate) fn field<T: de::DeserializeOwned + Default>(&self, name: &str) -> Result<T, String> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(T::default()),
            Some(v) => T::deserialize(v).map_err(|e| format!("\"_{name}\": {e}")),
        }
    }
}
