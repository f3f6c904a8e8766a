//! Tests of the handshake decisions, each cut-off from both sides.

use std::cmp::Ordering;

use serde_json::json;

use super::*;
use crate::ssm::payload::{ActionStatus, ActionType, HandshakeRequest, PortProperties, to_json};

fn port(kind: Option<&str>) -> PortProperties {
    PortProperties {
        kind: kind.map(str::to_owned),
        port_number: Some("22".into()),
        local_port_number: Some("0".into()),
        host: None,
    }
}

const LPF: Option<&str> = Some(LOCAL_PORT_FORWARDING);

#[test]
fn versions_compare_numerically_per_component() {
    use Ordering::*;
    for (a, b, expected) in [
        ("3.0.197.0", "3.0.196.0", Greater),
        ("3.0.196.0", "3.0.196.0", Equal),
        ("3.0.1000.0", "3.0.999.0", Greater),
        ("10.0.0.0", "9.9.9.9", Greater),
        ("1.1.69.0", "1.1.70", Less),
        ("1.1.70.0", "1.1.70", Equal),
        ("3.1", "3.1.0.0", Equal),
        ("3.1.0.1", "3.1", Greater),
        ("0010.2", "10.2", Equal),
        (" 1.2.3 ", "1.2.3", Equal),
        ("99999999999999999999999.0", "1.0", Greater),
        ("", "0.0.0.1", Less),
    ] {
        assert_eq!(compare_versions(a, b), expected, "{a} vs {b}");
        assert_eq!(compare_versions(b, a), expected.reverse(), "{b} vs {a}");
    }
}

#[test]
fn non_numeric_components_compare_as_text() {
    // The agent's fallback: "x/0" > "1" as text, which is how a
    // non-numeric ClientVersion lands in mux mode by accident.
    assert_eq!(compare_versions("x/0.1.0", "1.1.70"), Ordering::Greater);
    assert!(!is_dotted_numeric("x/0.1.0"));
    assert!(!is_dotted_numeric("1..2"));
    assert!(is_dotted_numeric(CLIENT_VERSION));
    assert!(is_dotted_numeric(BASIC_MODE_CLIENT_VERSION));
}

#[test]
fn our_client_version_is_past_both_agent_cut_offs() {
    assert_eq!(
        compare_versions(CLIENT_VERSION, MUX_MIN_CLIENT_VERSION),
        Ordering::Greater
    );
    assert_eq!(
        compare_versions(CLIENT_VERSION, "1.2.331.0"),
        Ordering::Greater
    );
    assert_eq!(
        compare_versions(BASIC_MODE_CLIENT_VERSION, MUX_MIN_CLIENT_VERSION),
        Ordering::Less
    );
}

#[test]
fn mux_cut_off_on_the_agent_version() {
    assert_eq!(
        port_mode(&port(LPF), "3.0.196.0", CLIENT_VERSION),
        PortMode::Basic
    );
    assert_eq!(
        port_mode(&port(LPF), "3.0.197.0", CLIENT_VERSION),
        PortMode::Mux
    );
    assert_eq!(
        port_mode(&port(LPF), "3.3.1142.0", CLIENT_VERSION),
        PortMode::Mux
    );
    assert_eq!(
        port_mode(&port(LPF), "2.9.9999.9", CLIENT_VERSION),
        PortMode::Basic
    );
}

#[test]
fn mux_cut_off_on_the_client_version() {
    let agent = "3.3.1142.0";
    assert_eq!(port_mode(&port(LPF), agent, "1.1.69"), PortMode::Basic);
    assert_eq!(port_mode(&port(LPF), agent, "1.1.69.0"), PortMode::Basic);
    assert_eq!(port_mode(&port(LPF), agent, "1.1.70"), PortMode::Mux);
    assert_eq!(port_mode(&port(LPF), agent, "1.1.70.0"), PortMode::Mux);
    assert_eq!(
        port_mode(&port(LPF), agent, BASIC_MODE_CLIENT_VERSION),
        PortMode::Basic
    );
}

#[test]
fn without_local_port_forwarding_it_is_standard_stream() {
    let agent = "3.3.1142.0";
    assert_eq!(
        port_mode(&port(None), agent, CLIENT_VERSION),
        PortMode::StandardStream
    );
    assert_eq!(
        port_mode(&port(None), "1.0.0.0", CLIENT_VERSION),
        PortMode::StandardStream
    );
    assert_eq!(
        port_mode(&port(Some("SomethingElse")), agent, CLIENT_VERSION),
        PortMode::StandardStream
    );
}

#[test]
fn port_mode_from_the_reference_request() {
    let request: HandshakeRequest = serde_json::from_value(json!({
        "AgentVersion": "3.3.1142.0",
        "RequestedClientActions": [{"ActionType": "SessionType", "ActionParameters": {
            "SessionType": "Port",
            "Properties": {"portNumber": "22", "type": "LocalPortForwarding", "localPortNumber": "0"}}}]
    }))
    .unwrap();
    let session = request.requested_client_actions[0].session_type().unwrap();
    let properties = session.port_properties().unwrap();
    assert_eq!(
        port_mode(&properties, &request.agent_version, CLIENT_VERSION),
        PortMode::Mux
    );
}

#[test]
fn keepalive_cut_off() {
    assert!(smux_keepalive_needed("3.1.1511.0"));
    assert!(!smux_keepalive_needed("3.1.1512.0"));
    assert!(smux_keepalive_needed("3.0.197.0"));
    assert!(!smux_keepalive_needed("3.3.1142.0"));
}

#[test]
fn terminate_flag_cut_off() {
    assert!(!terminate_flag_supported("2.3.722.0"));
    assert!(terminate_flag_supported("2.3.723.0"));
    assert!(!terminate_flag_supported("2.2.9999.0"));
    assert!(terminate_flag_supported("3.3.1142.0"));
}

fn request(actions: serde_json::Value) -> HandshakeRequest {
    serde_json::from_value(json!({
        "AgentVersion": "3.3.1142.0",
        "RequestedClientActions": actions,
    }))
    .unwrap()
}

#[test]
fn session_type_succeeds_with_our_client_version() {
    let response = handshake_response(&request(json!([
        {"ActionType": "SessionType", "ActionParameters": {"SessionType": "Standard_Stream", "Properties": null}}
    ])));
    assert_eq!(response.client_version, "1.2.694.0");
    assert_eq!(
        String::from_utf8(to_json(&response).unwrap()).unwrap(),
        r#"{"ClientVersion":"1.2.694.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,"ActionResult":null,"Error":""}],"Errors":null}"#
    );
}

#[test]
fn every_action_is_answered_in_order() {
    let response = handshake_response(&request(json!([
        {"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": "arn:aws:kms:eu-west-1:1:key/k"}},
        {"ActionType": "SessionType", "ActionParameters": {"SessionType": "Port", "Properties": {"portNumber": "22"}}},
        {"ActionType": "Teleport", "ActionParameters": {}},
    ])));
    let answers: Vec<_> = response
        .processed_client_actions
        .iter()
        .map(|a| (a.action_type.clone(), a.action_status))
        .collect();
    assert_eq!(
        answers,
        [
            (ActionType::KmsEncryption, ActionStatus::Unsupported),
            (ActionType::SessionType, ActionStatus::Success),
            (
                ActionType::Other("Teleport".into()),
                ActionStatus::Unsupported
            ),
        ]
    );
    let kms = &response.processed_client_actions[0];
    assert_eq!(kms.error, KMS_NOT_BUILT_IN);
    assert_eq!(kms.action_status.to_i64(), 3);
    assert!(kms.action_result.is_none());
    assert!(
        response.processed_client_actions[2]
            .error
            .contains("Teleport")
    );
    assert!(response.processed_client_actions[1].error.is_empty());
}

#[test]
fn unknown_or_unreadable_session_types_are_unsupported_with_a_reason() {
    let response = handshake_response(&request(json!([
        {"ActionType": "SessionType", "ActionParameters": {"SessionType": "Hologram"}},
        {"ActionType": "SessionType", "ActionParameters": {"NoSessionType": 1}},
    ])));
    for answer in &response.processed_client_actions {
        assert_eq!(answer.action_status, ActionStatus::Unsupported);
        assert!(!answer.error.is_empty());
    }
    assert!(
        response.processed_client_actions[0]
            .error
            .contains("Hologram")
    );
}

#[test]
fn every_known_session_type_succeeds() {
    for kind in SESSION_TYPES {
        let response = handshake_response(&request(json!([
            {"ActionType": "SessionType", "ActionParameters": {"SessionType": kind}}
        ])));
        assert_eq!(
            response.processed_client_actions[0].action_status,
            ActionStatus::Success,
            "{kind}"
        );
    }
}

#[test]
fn no_actions_no_entries_and_a_chosen_client_version() {
    let response = handshake_response_as(&request(json!([])), BASIC_MODE_CLIENT_VERSION);
    assert!(response.processed_client_actions.is_empty());
    assert_eq!(response.client_version, "1.1.69.0");
    assert_eq!(response.errors, None);
}
