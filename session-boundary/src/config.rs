//! The settings and state of a `boundary` session.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};
use session_core::{Error, Result};
use time::OffsetDateTime;

use crate::api::TargetRef;

/// The settings of a `boundary` session (the session's `config`, camelCase
/// keys). The password is not here: it lives in the secret store under
/// [`secret_names::PASSWORD`](crate::secret_names::PASSWORD).
///
/// ```
/// use session_boundary::BoundaryConfig;
/// let config = BoundaryConfig::new("https://boundary.example:9200", "ampw_1234567890", "admin")
///     .with_target_id("ttcp_1234567890");
/// config.validate().unwrap();
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct BoundaryConfig {
    /// The controller's address, e.g. `https://boundary.example:9200`.
    pub controller: String,
    /// The password auth method (`ampw_…`).
    pub auth_method_id: String,
    /// The account's login name.
    pub login_name: String,
    /// The target by id (`ttcp_…`)…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// …or by name, with [`scope_id`](Self::scope_id) or
    /// [`scope_name`](Self::scope_name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    /// The target's project by id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<String>,
    /// The target's project by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_name: Option<String>,
    /// One host of the target's host sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// The local address to listen on (default `127.0.0.1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<IpAddr>,
    /// The local port (default: the token's `default_client_port`, else a
    /// free port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
}

impl BoundaryConfig {
    /// Settings for `login_name` on the password auth method
    /// `auth_method_id` of the controller at `controller`; add a target.
    pub fn new(
        controller: impl Into<String>,
        auth_method_id: impl Into<String>,
        login_name: impl Into<String>,
    ) -> Self {
        Self {
            controller: controller.into(),
            auth_method_id: auth_method_id.into(),
            login_name: login_name.into(),
            ..Self::default()
        }
    }

    /// The target with this id.
    pub fn with_target_id(mut self, id: impl Into<String>) -> Self {
        self.target_id = Some(id.into());
        self
    }

    /// The target with this name in the project with id `scope_id`.
    pub fn with_target_name(
        mut self,
        name: impl Into<String>,
        scope_id: impl Into<String>,
    ) -> Self {
        self.target_name = Some(name.into());
        self.scope_id = Some(scope_id.into());
        self
    }

    /// A host of the target.
    pub fn with_host_id(mut self, host_id: impl Into<String>) -> Self {
        self.host_id = Some(host_id.into());
        self
    }

    /// Listens on `port` of the listen address.
    pub fn with_listen_port(mut self, port: u16) -> Self {
        self.listen_port = Some(port);
        self
    }

    /// The target reference these settings name.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    pub fn target(&self) -> Result<TargetRef> {
        let non_empty = |v: &Option<String>| {
            v.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        };
        let target = match (
            non_empty(&self.target_id),
            non_empty(&self.target_name),
            non_empty(&self.scope_id),
            non_empty(&self.scope_name),
        ) {
            (Some(_), Some(_), _, _) => {
                return Err(Error::invalid_input(
                    "target",
                    "give targetId or targetName, not both",
                ));
            }
            (Some(id), None, None, None) => TargetRef::id(id),
            (Some(_), None, _, _) => {
                return Err(Error::invalid_input(
                    "scope",
                    "a scope goes with targetName only (a target id is unique)",
                ));
            }
            (None, Some(name), Some(scope), None) => TargetRef::name_in_scope_id(name, scope),
            (None, Some(name), None, Some(scope)) => TargetRef::name_in_scope_named(name, scope),
            (None, Some(_), Some(_), Some(_)) => {
                return Err(Error::invalid_input(
                    "scope",
                    "give scopeId or scopeName, not both",
                ));
            }
            (None, Some(_), None, None) => {
                return Err(Error::invalid_input(
                    "scope",
                    "a target given by name needs scopeId or scopeName",
                ));
            }
            (None, None, _, _) => {
                return Err(Error::invalid_input(
                    "target",
                    "missing: give targetId, or targetName with scopeId or scopeName",
                ));
            }
        };
        Ok(target)
    }

    /// The listen address: the settings', with `fallback_port` when they
    /// give no port.
    pub fn listen(&self, fallback_port: u16) -> SocketAddr {
        SocketAddr::new(
            self.listen_address
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            self.listen_port.unwrap_or(fallback_port),
        )
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the setting: no controller, or not an
    /// http(s) URL; no auth method or login name; no target, or both an id
    /// and a name; a name without exactly one scope.
    pub fn validate(&self) -> Result<()> {
        crate::api::ControllerClient::new(&self.controller)?;
        if self.auth_method_id.trim().is_empty() {
            return Err(Error::invalid_input(
                "authMethodId",
                "missing (e.g. ampw_1234567890)",
            ));
        }
        if self.login_name.trim().is_empty() {
            return Err(Error::invalid_input("loginName", "missing"));
        }
        self.target()?;
        Ok(())
    }
}

/// What a started `boundary` session records (the session's `state`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct BoundaryState {
    /// The Boundary session (`s_…`) new connections go to.
    pub session_id: String,
    /// Its target.
    pub target_id: String,
    /// The worker carrying it.
    pub worker_address: String,
    /// Where the local proxy listens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<SocketAddr>,
    /// Connections allowed per session; none when unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<u32>,
    /// When the Boundary session expires.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expiration: Option<OffsetDateTime>,
    /// Earlier Boundary sessions of this one (rotations) that still carry
    /// connections; canceled when those end.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub draining: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BoundaryConfig {
        BoundaryConfig::new("http://127.0.0.1:9200", "ampw_1234567890", "admin")
    }

    #[test]
    fn a_target_is_an_id_or_a_name_with_one_scope() {
        assert_eq!(
            base().with_target_id("ttcp_1").target().unwrap(),
            TargetRef::id("ttcp_1")
        );
        assert_eq!(
            base().with_target_name("db", "p_1").target().unwrap(),
            TargetRef::name_in_scope_id("db", "p_1")
        );
        let field = |c: BoundaryConfig| match c.validate().unwrap_err() {
            Error::InvalidInput { field, .. } => field,
            e => panic!("{e:?}"),
        };
        assert_eq!(field(base()), "target");
        let mut both = base().with_target_id("ttcp_1");
        both.target_name = Some("db".into());
        assert_eq!(field(both), "target");
        let mut unscoped = base();
        unscoped.target_name = Some("db".into());
        assert_eq!(field(unscoped), "scope");
        let mut two_scopes = base().with_target_name("db", "p_1");
        two_scopes.scope_name = Some("prod".into());
        assert_eq!(field(two_scopes), "scope");
        let mut no_method = base().with_target_id("ttcp_1");
        no_method.auth_method_id.clear();
        assert_eq!(field(no_method), "authMethodId");
        let mut bad_address = base().with_target_id("ttcp_1");
        bad_address.controller = "127.0.0.1:9200".into();
        assert_eq!(field(bad_address), "controller address");
    }

    #[test]
    fn settings_round_trip_in_camel_case() {
        let config = base().with_target_name("db", "p_1").with_listen_port(5432);
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["authMethodId"], "ampw_1234567890");
        assert_eq!(json["targetName"], "db");
        assert_eq!(json["listenPort"], 5432);
        assert!(json.get("targetId").is_none());
        let back: BoundaryConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, config);
        assert_eq!(config.listen(0), "127.0.0.1:5432".parse().unwrap());
    }
}
