//! The settings of an `awsSsm` session (its `config`) and what a start
//! made available (its `state`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use session_core::{Error, Result};

/// The document that opens an interactive shell (the service's default).
pub const SHELL_DOCUMENT: &str = "SSM-SessionManagerRunShell";
/// Port forwarding to a port of the target itself.
pub const PORT_FORWARDING_DOCUMENT: &str = "AWS-StartPortForwardingSession";
/// Port forwarding to a host the target can reach.
pub const REMOTE_HOST_PORT_FORWARDING_DOCUMENT: &str = "AWS-StartPortForwardingSessionToRemoteHost";

/// The settings of an `awsSsm` session, in its `config`.
///
/// The AWS identity is the session's parent (any AWS credential session of
/// the workspace, `parentSessionId`), else the SDK's default provider chain;
/// the region is the session's `region`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SsmConfig {
    /// The managed node: `i-…` (EC2), `mi-…` (hybrid) or
    /// `ecs:<cluster>_<task-id>_<container-runtime-id>`.
    pub target: String,
    /// The Session Manager document; the shell when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_name: Option<String>,
    /// The document's parameters, each a list of strings (as the API takes
    /// them), e.g. `portNumber = ["5432"]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, Vec<String>>,
    /// Why the session is opened, shown in the session history (1–256
    /// characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Refuse KMS encryption: when the account's Session Manager
    /// preferences ask for it, the start fails naming this setting instead
    /// of calling KMS (e.g. where the caller must not use KMS keys).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forbid_kms: bool,
    /// How long a lost data channel is resumed before the session counts
    /// as disconnected, in seconds (default: the provider's, 10 minutes);
    /// 0 turns resuming off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_deadline_seconds: Option<u64>,
}

impl SsmConfig {
    /// A shell on `target`.
    pub fn shell(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            ..Self::default()
        }
    }

    /// A port forward from a local port to `port` on `target`.
    pub fn port_forward(target: impl Into<String>, port: u16) -> Self {
        let mut config = Self::shell(target);
        config.document_name = Some(PORT_FORWARDING_DOCUMENT.to_owned());
        config
            .parameters
            .insert("portNumber".into(), vec![port.to_string()]);
        config
    }

    /// The document to start: the configured one, else the shell.
    pub fn document(&self) -> &str {
        self.document_name.as_deref().unwrap_or(SHELL_DOCUMENT)
    }

    /// The local port the settings ask for (`localPortNumber`), if any and
    /// not 0.
    pub fn local_port(&self) -> Option<u16> {
        self.parameters
            .get("localPortNumber")
            .and_then(|values| values.first())
            .and_then(|value| value.parse().ok())
            .filter(|port| *port != 0)
    }

    /// Checks every field as the service would, so that a bad setting fails
    /// at `add`, naming the field.
    pub fn validate(&self) -> Result<()> {
        validate_target(&self.target)?;
        if let Some(document) = &self.document_name {
            let ok = (3..=128).contains(&document.len())
                && document
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b));
            if !ok {
                return Err(Error::invalid_input(
                    "documentName",
                    format!(
                        "{document:?} is not a document name (3–128 letters, digits and _-.:/)"
                    ),
                ));
            }
        }
        for (name, values) in &self.parameters {
            if name.is_empty() || values.is_empty() {
                return Err(Error::invalid_input(
                    "parameters",
                    format!("{name:?} needs a name and at least one value"),
                ));
            }
            if matches!(name.as_str(), "portNumber" | "localPortNumber") {
                for value in values {
                    if value.parse::<u16>().is_err() {
                        return Err(Error::invalid_input(
                            "parameters",
                            format!("{name} {value:?} is not a port number (0–65535)"),
                        ));
                    }
                }
            }
        }
        if let Some(reason) = &self.reason {
            let chars = reason.chars().count();
            if !(1..=256).contains(&chars) {
                return Err(Error::invalid_input(
                    "reason",
                    format!("must be 1–256 characters, not {chars}"),
                ));
            }
        }
        Ok(())
    }
}

/// Checks a target id: `i-` or `mi-` followed by hex digits, or an ECS
/// target.
fn validate_target(target: &str) -> Result<()> {
    let hex_id = |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = if let Some(rest) = target.strip_prefix("i-") {
        hex_id(rest)
    } else if let Some(rest) = target.strip_prefix("mi-") {
        hex_id(rest)
    } else if let Some(rest) = target.strip_prefix("ecs:") {
        rest.split('_').count() == 3 && rest.split('_').all(|part| !part.is_empty())
    } else {
        false
    };
    if ok && target.len() <= 400 {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "target",
            format!(
                "{target:?} is not a managed node id (i-…, mi-…, or ecs:<cluster>_<task-id>_<container-runtime-id>)"
            ),
        ))
    }
}

/// What a start of an `awsSsm` session made available, in its `state`.
/// Never a token: the stream token is single-use and short-lived, and
/// stays in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SsmState {
    /// The service's session id (for resume, terminate and the history).
    pub ssm_session_id: String,
    /// The client id sent when the data channel opened; a resume must send
    /// the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The agent's version from its handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// Where the port forward listens, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_documents_parameters_and_reasons_are_checked() {
        assert!(SsmConfig::shell("i-0123456789abcdef0").validate().is_ok());
        assert!(SsmConfig::shell("mi-0123456789abcdef0").validate().is_ok());
        assert!(
            SsmConfig::shell("ecs:cluster_0123abcd_0123abcd-123")
                .validate()
                .is_ok()
        );
        for bad in ["", "i-", "i-xyz", "host.example.com", "ecs:onlyone"] {
            let error = SsmConfig::shell(bad).validate().unwrap_err();
            assert!(error.to_string().contains("target"), "{bad}: {error}");
        }
        let mut config = SsmConfig::port_forward("i-0123456789abcdef0", 5432);
        assert_eq!(config.document(), PORT_FORWARDING_DOCUMENT);
        assert!(config.validate().is_ok());
        config
            .parameters
            .insert("localPortNumber".into(), vec!["99999".into()]);
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("localPortNumber")
        );
        config
            .parameters
            .insert("localPortNumber".into(), vec!["15432".into()]);
        assert_eq!(config.local_port(), Some(15432));
        config.document_name = Some("x".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("documentName")
        );
        let mut config = SsmConfig::shell("i-0123456789abcdef0");
        config.reason = Some(String::new());
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("reason")
        );
        assert_eq!(config.document(), SHELL_DOCUMENT);
    }

    #[test]
    fn the_config_is_camel_case_and_leaves_out_what_is_unset() {
        let config = SsmConfig::port_forward("i-0123456789abcdef0", 22);
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "target": "i-0123456789abcdef0",
                "documentName": "AWS-StartPortForwardingSession",
                "parameters": {"portNumber": ["22"]}
            })
        );
    }
}
