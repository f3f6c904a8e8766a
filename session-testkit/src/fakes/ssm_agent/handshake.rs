//! The agent's side of the handshake (`ssm.md` §2.7): the HandshakeRequest
//! for a session's document, the checks on the HandshakeResponse, the
//! mux-or-basic decision, and the HandshakeComplete.

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::fakes::ssm::SessionRecord;

/// The lowest ClientVersion the agent runs smux (mux) port forwarding for.
pub const MUX_CLIENT_VERSION: &str = "1.1.70";

/// The newest agent without smux: agents up to this version (inclusive)
/// run basic port forwarding whatever the client reports (the plugin's
/// rule, `ssm.md` §2.7: mux needs an agent newer than this).
pub const LAST_AGENT_WITHOUT_MUX: &str = "3.0.196.0";

/// What the agent runs for a session, from its document and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKind {
    /// A shell-like session: `Standard_Stream`, `InteractiveCommands` or
    /// `NonInteractiveCommands` (the session type reported).
    Shell(String),
    /// `Port`, with its properties (`portNumber`, `localPortNumber`,
    /// `type`, `host`, as the document gives them).
    Port(Map<String, Value>),
}

impl SessionKind {
    /// The kind of `session`: from `DocumentName` and `Parameters` (`ssm.md`
    /// §1.1); unknown documents run as a shell.
    pub fn of(session: &SessionRecord) -> Self {
        let doc = session.document_name.as_deref().unwrap_or("");
        let doc = doc.rsplit('/').next().unwrap_or(doc);
        let param = |name: &str| {
            session
                .parameters
                .get(name)
                .and_then(|v| v.first())
                .cloned()
        };
        let mut props = Map::new();
        let mut port = |with_type: bool, with_host: bool| {
            if let Some(h) = param("host").filter(|_| with_host) {
                props.insert("host".into(), Value::String(h));
            }
            props.insert(
                "localPortNumber".into(),
                Value::String(param("localPortNumber").unwrap_or_else(|| "0".into())),
            );
            props.insert(
                "portNumber".into(),
                Value::String(param("portNumber").unwrap_or_else(|| "22".into())),
            );
            if with_type {
                props.insert("type".into(), Value::String("LocalPortForwarding".into()));
            }
            SessionKind::Port(props.clone())
        };
        match doc {
            "AWS-StartPortForwardingSession" => port(true, false),
            "AWS-StartPortForwardingSessionToRemoteHost" => port(true, true),
            "AWS-StartSSHSession" => port(false, false),
            "AWS-StartInteractiveCommand" => SessionKind::Shell("InteractiveCommands".into()),
            "AWS-StartNonInteractiveCommand" => SessionKind::Shell("NonInteractiveCommands".into()),
            _ => SessionKind::Shell("Standard_Stream".into()),
        }
    }

    /// The `SessionType` reported in the HandshakeRequest.
    pub fn session_type(&self) -> &str {
        match self {
            SessionKind::Shell(t) => t,
            SessionKind::Port(_) => "Port",
        }
    }

    /// Whether a port session has `type: LocalPortForwarding`.
    pub fn is_local_port_forwarding(&self) -> bool {
        matches!(self, SessionKind::Port(p)
            if p.get("type").and_then(Value::as_str) == Some("LocalPortForwarding"))
    }
}

#[derive(Serialize)]
struct Request<'a> {
    #[serde(rename = "AgentVersion")]
    agent_version: &'a str,
    #[serde(rename = "RequestedClientActions")]
    actions: Vec<Action<'a>>,
}

#[derive(Serialize)]
struct Action<'a> {
    #[serde(rename = "ActionType")]
    action_type: &'a str,
    #[serde(rename = "ActionParameters")]
    parameters: ActionParameters<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ActionParameters<'a> {
    SessionType {
        #[serde(rename = "SessionType")]
        session_type: &'a str,
        #[serde(rename = "Properties", skip_serializing_if = "Option::is_none")]
        properties: Option<&'a Map<String, Value>>,
    },
    Kms {
        #[serde(rename = "KMSKeyId")]
        key_id: &'a str,
    },
}

/// `ActionType` of the KMS action.
pub const KMS_ACTION: &str = "KMSEncryption";

/// The HandshakeRequest payload (PayloadType 5): one `SessionType` action.
pub fn request_payload(agent_version: &str, kind: &SessionKind) -> Vec<u8> {
    request_payload_with_kms(agent_version, kind, None)
}

/// The HandshakeRequest payload (PayloadType 5): the `SessionType` action,
/// then a `KMSEncryption` action with `KMSKeyId` when `kms_key_id` is set.
pub fn request_payload_with_kms(
    agent_version: &str,
    kind: &SessionKind,
    kms_key_id: Option<&str>,
) -> Vec<u8> {
    let properties = match kind {
        SessionKind::Port(p) => Some(p),
        SessionKind::Shell(_) => None,
    };
    let mut actions = vec![Action {
        action_type: "SessionType",
        parameters: ActionParameters::SessionType {
            session_type: kind.session_type(),
            properties,
        },
    }];
    if let Some(key_id) = kms_key_id {
        actions.push(Action {
            action_type: KMS_ACTION,
            parameters: ActionParameters::Kms { key_id },
        });
    }
    let request = Request {
        agent_version,
        actions,
    };
    serde_json::to_vec(&request).unwrap_or_default()
}

/// The HandshakeComplete payload (PayloadType 7) with an empty
/// `CustomerMessage`.
pub fn complete_payload(elapsed_ns: u128) -> Vec<u8> {
    complete_payload_with_message(elapsed_ns, "")
}

/// The HandshakeComplete payload (PayloadType 7) with `customer_message`.
pub fn complete_payload_with_message(elapsed_ns: u128, customer_message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "HandshakeTimeToComplete": u64::try_from(elapsed_ns).unwrap_or(u64::MAX),
        "CustomerMessage": customer_message,
    }))
    .unwrap_or_default()
}

/// A HandshakeResponse the agent accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its `ClientVersion`.
    pub client_version: String,
    /// Whether the version is dotted-numeric (`1.2.694.0`).
    pub numeric_version: bool,
    /// `ActionResult.KMSCipherTextKey` of a successful `KMSEncryption`
    /// entry, as sent (base64).
    pub kms_cipher_text_key: Option<String>,
}

/// `KMSCipherTextKey` of a `KMSEncryption` entry's `ActionResult`, which
/// may be a JSON object or a string holding one.
fn kms_cipher_text_key(action: &Value) -> Result<String, String> {
    let result = action.get("ActionResult").unwrap_or(&Value::Null);
    let parsed;
    let result = match result {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text)
                .map_err(|e| format!("ActionResult is a string but not JSON: {e}"))?;
            &parsed
        }
        other => other,
    };
    result
        .get("KMSCipherTextKey")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("ActionResult has no KMSCipherTextKey: {result}"))
}

/// Checks a HandshakeResponse against `actions` requested actions: one
/// processed action per requested one, all with `ActionStatus` 1.
pub fn check_response(payload: &[u8], actions: usize) -> Result<Accepted, String> {
    check_response_kms(payload, actions, false)
}

/// [`check_response`], and with `kms` also a successful `KMSEncryption`
/// entry with a `KMSCipherTextKey` (its failures are reported as
/// `KMSEncryption failed: …`).
pub fn check_response_kms(payload: &[u8], actions: usize, kms: bool) -> Result<Accepted, String> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| format!("HandshakeResponse is not JSON: {e}"))?;
    let client_version = v
        .get("ClientVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let processed = v
        .get("ProcessedClientActions")
        .and_then(Value::as_array)
        .ok_or("HandshakeResponse has no ProcessedClientActions")?;
    if processed.len() != actions {
        return Err(format!(
            "HandshakeResponse answers {} actions, {actions} were requested",
            processed.len()
        ));
    }
    let mut kms_key = None;
    for action in processed {
        let status = action.get("ActionStatus").and_then(Value::as_i64);
        let action_type = action.get("ActionType").and_then(Value::as_str);
        let is_kms = action_type == Some(KMS_ACTION);
        if status != Some(1) {
            let why = format!(
                "action {} not successful (ActionStatus {status:?}, Error {})",
                action.get("ActionType").unwrap_or(&Value::Null),
                action.get("Error").unwrap_or(&Value::Null)
            );
            return Err(if is_kms {
                format!("{KMS_ACTION} failed: {why}")
            } else {
                why
            });
        }
        if is_kms {
            kms_key =
                Some(kms_cipher_text_key(action).map_err(|e| format!("{KMS_ACTION} failed: {e}"))?);
        }
    }
    if kms && kms_key.is_none() {
        return Err(format!(
            "{KMS_ACTION} failed: the HandshakeResponse has no {KMS_ACTION} entry"
        ));
    }
    let numeric_version = !client_version.is_empty()
        && client_version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    Ok(Accepted {
        client_version,
        numeric_version,
        kms_cipher_text_key: kms_key,
    })
}

/// Compares versions as the agent does: component by component (missing
/// components count as `0`), numerically where both are numbers, else as
/// text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (pa, pb): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for i in 0..pa.len().max(pb.len()) {
        let (x, y) = (
            pa.get(i).copied().unwrap_or("0"),
            pb.get(i).copied().unwrap_or("0"),
        );
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// The agent's port-mode rule: mux iff `type == LocalPortForwarding` and
/// ClientVersion ≥ 1.1.70.
pub fn uses_mux(kind: &SessionKind, client_version: &str) -> bool {
    kind.is_local_port_forwarding()
        && compare_versions(client_version, MUX_CLIENT_VERSION) != Ordering::Less
}

/// Whether an agent of `agent_version` has smux at all (newer than
/// [`LAST_AGENT_WITHOUT_MUX`]); an older one runs basic mode.
pub fn agent_has_mux(agent_version: &str) -> bool {
    compare_versions(agent_version, LAST_AGENT_WITHOUT_MUX) == Ordering::Greater
}
