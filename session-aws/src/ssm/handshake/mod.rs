//! Handshake decisions (`ssm.md` §2.7), as pure functions: the answer to
//! the agent's HandshakeRequest and the version-driven rules for the port
//! mode, the smux keepalive and the TerminateSession flag.
//!
//! Both sides pick the port mode on their own, so these rules must match
//! the agent's exactly; each cut-off is tested on both of its sides.

mod version;

#[cfg(test)]
mod tests;

pub use version::{compare_versions, is_dotted_numeric};

use std::cmp::Ordering;

use super::payload::{
    ActionStatus, ActionType, HandshakeRequest, HandshakeResponse, PortProperties,
    ProcessedClientAction, RequestedClientAction,
};

/// The ClientVersion we report: at least [`MUX_MIN_CLIENT_VERSION`], so the
/// agent uses smux for local port forwarding, and newer than `1.2.331.0`,
/// after which newer agents drop their smux keepalive for the client.
pub const CLIENT_VERSION: &str = "1.2.694.0";

/// A ClientVersion below [`MUX_MIN_CLIENT_VERSION`], to report if basic
/// port mode must ever be forced.
pub const BASIC_MODE_CLIENT_VERSION: &str = "1.1.69.0";

/// The lowest ClientVersion for which the agent uses smux (inclusive).
pub const MUX_MIN_CLIENT_VERSION: &str = "1.1.70";

/// Agents newer than this (exclusive) support smux port forwarding.
pub const MUX_AFTER_AGENT_VERSION: &str = "3.0.196.0";

/// Agents newer than this (exclusive) need no smux keepalive from us.
pub const KEEPALIVE_UNTIL_AGENT_VERSION: &str = "3.1.1511.0";

/// Agents newer than this (exclusive) understand the TerminateSession flag.
pub const TERMINATE_FLAG_AFTER_AGENT_VERSION: &str = "2.3.722.0";

/// The port-properties `type` that allows smux.
pub const LOCAL_PORT_FORWARDING: &str = "LocalPortForwarding";

/// The session types the agent may request (`SessionType` action).
pub const SESSION_TYPES: [&str; 4] = [
    "Standard_Stream",
    "Port",
    "InteractiveCommands",
    "NonInteractiveCommands",
];

/// The `Error` text of a `KMSEncryption` action answered Unsupported.
pub const KMS_NOT_BUILT_IN: &str = "KMS encryption is not built into this client (session-aws \
     feature ssm-kms): build it in, or turn off KMS encryption in the Session Manager preferences";

/// How the Output payloads of a `Port` session are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortMode {
    /// An smux v1 byte stream, one smux stream per local connection.
    Mux,
    /// Raw TCP bytes of one connection at a time; Flag DisconnectToPort
    /// ends each.
    Basic,
    /// No `type` (e.g. `AWS-StartSSHSession`): stdin/stdout ↔ Output.
    StandardStream,
}

/// The port mode of a `Port` session (`ssm.md` §2.7): mux iff `type` is
/// `LocalPortForwarding`, the agent is newer than `3.0.196.0` and
/// `client_version` (the one we reported) is at least `1.1.70`; basic for
/// any other `LocalPortForwarding`; standard-stream when `type` is absent.
///
/// `ssm.md` names only those two `type` cases; any other `type` is treated
/// like an absent one, as the plugin's `if type == LocalPortForwarding …
/// else` does.
pub fn port_mode(
    properties: &PortProperties,
    agent_version: &str,
    client_version: &str,
) -> PortMode {
    match properties.kind.as_deref() {
        Some(LOCAL_PORT_FORWARDING) => {
            let agent_ok =
                compare_versions(agent_version, MUX_AFTER_AGENT_VERSION) == Ordering::Greater;
            let client_ok =
                compare_versions(client_version, MUX_MIN_CLIENT_VERSION) != Ordering::Less;
            if agent_ok && client_ok {
                PortMode::Mux
            } else {
                PortMode::Basic
            }
        }
        _ => PortMode::StandardStream,
    }
}

/// Whether we must send smux keepalives: only to agents up to
/// `3.1.1511.0`; newer ones have theirs disabled and would not expect ours.
pub fn smux_keepalive_needed(agent_version: &str) -> bool {
    compare_versions(agent_version, KEEPALIVE_UNTIL_AGENT_VERSION) != Ordering::Greater
}

/// Whether the agent understands Flag TerminateSession (newer than
/// `2.3.722.0`); otherwise stop with the TerminateSession API.
pub fn terminate_flag_supported(agent_version: &str) -> bool {
    compare_versions(agent_version, TERMINATE_FLAG_AFTER_AGENT_VERSION) == Ordering::Greater
}

/// The HandshakeResponse to `request`, reporting [`CLIENT_VERSION`].
pub fn handshake_response(request: &HandshakeRequest) -> HandshakeResponse {
    handshake_response_as(request, CLIENT_VERSION)
}

/// The HandshakeResponse to `request`, reporting `client_version`: one
/// entry per requested action, in order.
/// - `SessionType` of a known type → Success;
/// - `SessionType` with unreadable parameters or an unknown type →
///   Unsupported, with the reason;
/// - `KMSEncryption` → Unsupported with [`KMS_NOT_BUILT_IN`] (status 3), so
///   that the agent cancels the session with a visible reason rather than
///   the client failing later on encrypted payloads;
/// - anything else → Unsupported, naming the action.
///
/// Any non-success entry makes the agent cancel the session.
pub fn handshake_response_as(
    request: &HandshakeRequest,
    client_version: &str,
) -> HandshakeResponse {
    HandshakeResponse {
        client_version: client_version.to_owned(),
        processed_client_actions: request
            .requested_client_actions
            .iter()
            .map(process_action)
            .collect(),
        errors: None,
    }
}

fn process_action(action: &RequestedClientAction) -> ProcessedClientAction {
    let outcome = match &action.action_type {
        ActionType::SessionType => match action.session_type() {
            Ok(request) if SESSION_TYPES.contains(&request.session_type.as_str()) => Ok(()),
            Ok(request) => Err(format!(
                "session type {:?} is not supported by this client",
                request.session_type
            )),
            Err(error) => Err(format!("unreadable SessionType parameters: {error}")),
        },
        ActionType::KmsEncryption => Err(KMS_NOT_BUILT_IN.to_owned()),
        ActionType::Other(name) => Err(format!(
            "action type {name:?} is not supported by this client"
        )),
    };
    let (action_status, error) = match outcome {
        Ok(()) => (ActionStatus::Success, String::new()),
        Err(error) => (ActionStatus::Unsupported, error),
    };
    ProcessedClientAction {
        action_type: action.action_type.clone(),
        action_status,
        action_result: None,
        error,
    }
}
