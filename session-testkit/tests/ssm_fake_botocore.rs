//! botocore, an SSM client we did not write, drives `SsmControlFake` through
//! the four Session Manager operations and every error the fake emits, with
//! botocore's `ssm` service model (2014-11-06) as the contract: each answer
//! must parse into the model's output shape (dates as datetimes), and each
//! error into the model's exception class.
//!
//! The model lists `TargetNotConnected`, `InvalidDocument`,
//! `DoesNotExistException`, `InvalidFilterKey`, `InvalidNextToken` and
//! `InternalServerError` for these operations, and gives no HTTP status to
//! any SSM error (AWS JSON 1.1 carries the code in `__type`), so the
//! statuses are the ones of `ssm.md`: 400, and 500 for `InternalServerError`.
//! Two errors the fake emits are in the service model without being listed
//! for these operations: `ValidationException` (constraints botocore does
//! not check) and `ThrottlingException` (botocore's retry path); botocore
//! must still raise their classes. Five are not in the model at all and
//! must come out as a plain `ClientError`: `SerializationException` and the
//! signature errors `MissingAuthenticationTokenException` (403),
//! `IncompleteSignatureException` and `InvalidSignatureException` (400).
//!
//! The script (`ssm_fake_botocore.py`) asks this test to act on the fake
//! (data-channel side, clock, faults) through a line protocol on its stdin
//! and stdout. botocore is a pinned test peer: skipped loudly outside CI
//! when missing, a failure in CI.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use session_core::ManualClock;
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::ssm::{OPERATIONS, SessionRecord, SessionStatus};
use time::macros::datetime;

const SCRIPT: &str = include_str!("ssm_fake_botocore.py");
const ALICE_KEY: &str = "AKIDALICEEXAMPLE0001";
const BOB_KEY: &str = "AKIDBOBEXAMPLE000002";
const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/Admin/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const STREAM_BASE: &str = "ws://127.0.0.1:45678";
const I1: &str = "i-0123456789abcdef0";
const I2: &str = "i-0fedcba9876543210";
const MI: &str = "mi-0123456789abcdef0";

/// How the `ssm` model knows an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Listed for the operation.
    Listed,
    /// An exception shape of the service, not listed for the operation.
    Service,
    /// Not in the model: a plain `ClientError`.
    Unmodelled,
}
use Kind::{Listed, Service, Unmodelled};

/// Every error the script triggers: (operation, case, error code, HTTP
/// status, how the model knows it).
#[rustfmt::skip]
const EXPECTED_ERRORS: &[(&str, &str, &str, u16, Kind)] = &[
    ("StartSession", "unknown target", "TargetNotConnected", 400, Listed),
    ("StartSession", "offline target", "TargetNotConnected", 400, Listed),
    ("StartSession", "unknown document", "InvalidDocument", 400, Listed),
    ("StartSession", "document name off the pattern", "ValidationException", 400, Service),
    ("StartSession", "reason over 256 characters", "ValidationException", 400, Service),
    ("StartSession", "no Target", "ValidationException", 400, Service),
    ("StartSession", "parameters not a map", "SerializationException", 400, Unmodelled),
    ("StartSession", "injected server error", "InternalServerError", 500, Listed),
    ("StartSession", "throttled", "ThrottlingException", 400, Service),
    ("StartSession", "unsigned", "MissingAuthenticationTokenException", 403, Unmodelled),
    ("StartSession", "signature missing", "IncompleteSignatureException", 400, Unmodelled),
    ("StartSession", "scoped to ec2", "InvalidSignatureException", 400, Unmodelled),
    ("ResumeSession", "unknown session", "DoesNotExistException", 400, Listed),
    ("ResumeSession", "terminated session", "DoesNotExistException", 400, Listed),
    ("ResumeSession", "injected server error", "InternalServerError", 500, Listed),
    ("ResumeSession", "throttled", "ThrottlingException", 400, Service),
    ("ResumeSession", "no SessionId", "ValidationException", 400, Service),
    ("TerminateSession", "injected server error", "InternalServerError", 500, Listed),
    ("TerminateSession", "no SessionId", "ValidationException", 400, Service),
    ("DescribeSessions", "next token of another listing", "InvalidNextToken", 400, Listed),
    ("DescribeSessions", "garbage next token", "InvalidNextToken", 400, Listed),
    ("DescribeSessions", "unknown filter key", "InvalidFilterKey", 400, Listed),
    ("DescribeSessions", "filter key in the wrong case", "InvalidFilterKey", 400, Listed),
    ("DescribeSessions", "MaxResults over 200", "ValidationException", 400, Service),
    ("DescribeSessions", "MaxResults 0", "ValidationException", 400, Service),
    ("DescribeSessions", "no State", "ValidationException", 400, Service),
    ("DescribeSessions", "unknown State", "ValidationException", 400, Service),
    ("DescribeSessions", "InvokedAfter not a date", "ValidationException", 400, Service),
    ("DescribeSessions", "unknown Status value", "ValidationException", 400, Service),
    ("DescribeSessions", "seven filters", "ValidationException", 400, Service),
    ("DescribeSessions", "injected server error", "InternalServerError", 500, Listed),
    ("DescribeSessions", "throttled", "ThrottlingException", 400, Service),
    ("DescribeSessions", "unsigned", "MissingAuthenticationTokenException", 403, Unmodelled),
];

fn record_json(s: &SessionRecord) -> Value {
    json!({
        "session_id": s.session_id,
        "status": s.status.as_str(),
        "owner": s.owner,
        "access_key_id": s.access_key_id,
        "region": s.region,
        "document_name": s.document_name,
        "parameters": s.parameters,
        "end_date": s.end_date.map(|t| t.unix_timestamp_nanos() / 1_000_000),
        "history": s.history.iter().map(|(st, _)| st.as_str()).collect::<Vec<_>>(),
        "tokens_issued": s.tokens_issued.len(),
    })
}

/// Carries out one control request of the script on the fake.
fn control(fake: &SsmControlFake, clock: &ManualClock, request: &Value) -> Value {
    let arg = |name: &str| {
        request[name]
            .as_str()
            .unwrap_or_else(|| panic!("{request}"))
    };
    match arg("do") {
        "session" => fake
            .session(arg("session_id"))
            .map_or(Value::Null, |s| record_json(&s)),
        "consume_token" => json!(fake.consume_token(arg("session_id"), arg("token"))),
        "connected" => json!(fake.connected(arg("session_id"))),
        "disconnected" => json!(fake.disconnected(arg("session_id"))),
        "time_out" => json!(fake.time_out(arg("session_id"))),
        "finish_terminating" => json!(fake.finish_terminating(arg("session_id"))),
        "set_access_type" => json!(fake.set_access_type(arg("session_id"), arg("access_type"))),
        "set_details" => json!(fake.set_details(arg("session_id"), arg("details"))),
        "hold_terminating" => {
            fake.set_hold_terminating(request["hold"].as_bool().unwrap());
            Value::Null
        }
        "advance" => {
            clock.advance(Duration::from_secs(request["seconds"].as_u64().unwrap()));
            Value::Null
        }
        "fail_next_call_of" => {
            fake.fail_next_call_of(arg("operation"));
            Value::Null
        }
        "throttle_next_call_of" => {
            fake.throttle_next_call_of(arg("operation"));
            Value::Null
        }
        other => panic!("the script asked for an unknown control action {other:?}"),
    }
}

/// Runs the script against `fake`, answering its control requests, and
/// returns its result.
fn run_script(python: &std::path::Path, fake: &SsmControlFake, clock: &ManualClock) -> Value {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(python)
        .env_clear()
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("-c")
        .arg(SCRIPT)
        .arg(fake.endpoint())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the peers' Python");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut result = None;
    for line in stdout.lines() {
        let line = line.expect("read the script's output");
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the script printed a line that is not JSON ({e})"));
        if let Some(request) = message.get("control") {
            let answer = control(fake, clock, request);
            writeln!(stdin, "{answer}").expect("answer the script");
            stdin.flush().unwrap();
        } else if let Some(out) = message.get("result") {
            result = Some(out.clone());
        }
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "botocore script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    result.expect("the script printed no result")
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_drives_every_operation_and_parses_every_error_as_modelled() {
    let Some(python) = session_testkit::peers::require_peer("botocore", || {
        session_testkit::peers::python_with_module("botocore")
    }) else {
        return;
    };
    let clock = Arc::new(ManualClock::new(datetime!(2024-08-29 10:00:00.250 UTC)));
    let fake = Arc::new(SsmControlFake::start_with_clock(clock.clone()).await);
    fake.add_target(I1);
    fake.add_target(I2);
    fake.add_target(MI);
    fake.add_offline_target("i-00000000000000off");
    fake.set_owner_for(ALICE_KEY, ALICE);
    fake.set_owner_for(BOB_KEY, BOB);
    fake.set_stream_base(STREAM_BASE);
    fake.set_max_session_duration(Some(60));
    let out = {
        let (fake, clock) = (fake.clone(), clock.clone());
        tokio::task::spawn_blocking(move || run_script(&python, &fake, &clock))
            .await
            .unwrap()
    };

    check_errors(&out["errors"]);
    check_start_and_resume(&out, &fake);
    check_describe(&out, &fake);
    check_terminate(&out, &fake);

    // On the wire (before botocore parsed them): dates are JSON numbers,
    // MaxSessionDuration a string, OutputUrl an object.
    assert_eq!(
        out["wire_types"],
        json!({
            "SessionId": ["str"], "Target": ["str"], "Status": ["str"],
            "StartDate": ["float"], "EndDate": ["float"], "DocumentName": ["str"],
            "Owner": ["str"], "Reason": ["str"], "Details": ["str"],
            "OutputUrl": ["dict"], "MaxSessionDuration": ["str"], "AccessType": ["str"],
        })
    );

    // Every request botocore sent reached the fake under its operation.
    let sent = out["sent"].as_object().unwrap();
    for operation in OPERATIONS {
        let count = sent.get(operation).and_then(Value::as_u64).unwrap_or(0);
        assert!(count > 0, "{operation} never called");
        assert_eq!(
            usize::try_from(count).unwrap(),
            fake.calls(operation),
            "botocore's requests of {operation} against the fake's count"
        );
    }
    assert_eq!(sent.len(), OPERATIONS.len(), "{sent:?}");
}

/// Each error: the expected code and status, and how botocore and its
/// model took it.
fn check_errors(errors: &Value) {
    let mut seen = BTreeSet::new();
    for e in errors.as_array().unwrap() {
        let operation = e["operation"].as_str().unwrap();
        let case = e["case"].as_str().unwrap();
        let what = format!("{operation} / {case}");
        assert!(seen.insert((operation, case)), "{what} recorded twice");
        let &(_, _, code, status, kind) = EXPECTED_ERRORS
            .iter()
            .find(|(o, c, ..)| *o == operation && *c == case)
            .unwrap_or_else(|| panic!("{what}: not in the expected table"));
        assert_eq!(e["code"], code, "{what}: {e}");
        assert_eq!(e["status"], status, "{what}: {e}");
        assert_eq!(e["request_id"], true, "{what}: x-amzn-requestid: {e}");
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {e}"
        );
        // SSM's model gives its errors no status: nothing to contradict.
        assert_eq!(e["model_status"], Value::Null, "{what}: {e}");
        assert_eq!(e["listed"], kind == Listed, "{what}: listed? {e}");
        assert_eq!(
            e["in_model"],
            kind != Unmodelled,
            "{what}: in the model? {e}"
        );
        if kind == Unmodelled {
            assert_eq!(e["exception"], "ClientError", "{what}: {e}");
        } else {
            assert_eq!(e["exception"], code, "{what}: {e}");
            assert_eq!(e["is_modelled_class"], true, "{what}: {e}");
        }
    }
    let missing: Vec<_> = EXPECTED_ERRORS
        .iter()
        .filter(|(o, c, ..)| !seen.contains(&(*o, *c)))
        .collect();
    assert!(missing.is_empty(), "not triggered: {missing:?}");
}

fn check_start_and_resume(out: &Value, fake: &SsmControlFake) {
    for (name, owner) in [("shell", "alice-"), ("port", "alice-"), ("ssh", "bob-")] {
        let started = &out[name];
        let id = started["SessionId"].as_str().unwrap();
        let hex = id.strip_prefix(owner).unwrap_or_else(|| panic!("{id}"));
        assert_eq!(hex.len(), 17, "{id}");
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_eq!(
            started["StreamUrl"],
            format!("{STREAM_BASE}/v1/data-channel/{id}?role=publish_subscribe")
        );
        assert!(
            started["TokenValue"]
                .as_str()
                .is_some_and(|t| t.len() >= 32)
        );
        let mut keys: Vec<_> = started.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["SessionId", "StreamUrl", "TokenValue"]);
    }
    // Bob's session was recorded with Bob's identity.
    let ssh = &out["ssh_record"];
    assert_eq!(ssh["owner"], BOB);
    assert_eq!(ssh["access_key_id"], BOB_KEY);
    assert_eq!(ssh["region"], "us-west-2");
    assert_eq!(ssh["document_name"], "AWS-StartSSHSession");
    assert_eq!(ssh["parameters"], json!({"portNumber": ["22"]}));
    let port = fake
        .session(out["port"]["SessionId"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        port.parameters,
        [
            ("localPortNumber".to_owned(), vec!["0".to_owned()]),
            ("portNumber".to_owned(), vec!["22".to_owned()]),
        ]
        .into()
    );
    let shell = fake
        .session(out["shell"]["SessionId"].as_str().unwrap())
        .unwrap();
    assert_eq!(shell.reason.as_deref(), Some("botocore check"));
    assert_eq!(
        (shell.access_key_id.as_str(), shell.region.as_str()),
        (ALICE_KEY, "eu-west-1")
    );

    // Every successful StartSession was signed by the identity of its client.
    let signers: Vec<_> = fake
        .calls_of("StartSession")
        .into_iter()
        .filter(|c| c.error.is_none())
        .map(|c| (c.access_key_id.unwrap(), c.region.unwrap()))
        .collect();
    let alice = (ALICE_KEY.to_owned(), "eu-west-1".to_owned());
    let bob = (BOB_KEY.to_owned(), "us-west-2".to_owned());
    let mut expected = vec![alice.clone(), alice.clone(), bob];
    expected.extend(std::iter::repeat_n(alice, 5));
    assert_eq!(signers, expected);
    let unsigned = fake
        .call_log()
        .into_iter()
        .filter(|c| c.error.as_deref() == Some("MissingAuthenticationTokenException"))
        .count();
    assert_eq!(unsigned, 2);

    // Tokens are one-shot; ResumeSession replaces them.
    assert_eq!(out["consume"], json!([true, false]));
    assert_eq!(out["connected"], true);
    let resumed = &out["resumed"];
    assert_eq!(resumed["SessionId"], out["shell"]["SessionId"]);
    assert_eq!(resumed["StreamUrl"], out["shell"]["StreamUrl"]);
    assert_ne!(resumed["TokenValue"], out["shell"]["TokenValue"]);
    assert_eq!(out["consume_after_resume"], json!([false, true]));
    assert_eq!(out["disconnected"], json!([true, true]));
    assert!(
        out["port_resumed"]["TokenValue"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(out["timed_out"]["TokenValue"], "", "timed out: empty token");
    assert_eq!(out["timed_out"]["SessionId"], out["port"]["SessionId"]);
}

fn check_describe(out: &Value, fake: &SsmControlFake) {
    let id = |name: &str| out[name]["SessionId"].as_str().unwrap().to_owned();
    let (shell, port, ssh) = (id("shell"), id("port"), id("ssh"));
    let all: Vec<String> = strs(&out["filters"]["all"])
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(all.len(), 8);
    assert_eq!(all[..3], [shell.clone(), port.clone(), ssh.clone()]);
    let later = &all[3..];
    let f = |name: &str| strs(&out["filters"][name]);
    let later_refs: Vec<&str> = later.iter().map(String::as_str).collect();
    assert_eq!(f("InvokedAfter"), later_refs);
    assert_eq!(f("InvokedBefore"), [&shell, &port, &ssh]);
    assert_eq!(f("Target"), [&port]);
    let mut alices = vec![shell.as_str(), port.as_str()];
    alices.extend(&later_refs);
    assert_eq!(f("Owner alice"), alices);
    assert_eq!(f("Owner bob"), [&ssh]);
    assert_eq!(f("Status Connected"), [&shell]);
    assert_eq!(f("Status Disconnected"), [&port]);
    let mut connecting = vec![ssh.as_str()];
    connecting.extend(&later_refs);
    assert_eq!(f("Status Connecting"), connecting);
    assert_eq!(f("SessionId"), [&shell]);
    assert_eq!(f("AccessType JustInTime"), [&ssh]);
    assert_eq!(f("AccessType Standard").len(), 7);
    assert_eq!(f("Target and InvokedBefore"), [&shell]);

    // The Session shape as botocore parsed it: dates are datetimes.
    let described = out["described"].as_array().unwrap();
    assert_eq!(
        described[0],
        json!({
            "SessionId": shell,
            "Target": I1,
            "Status": "Connected",
            "StartDate": {"datetime": "2024-08-29T10:00:00.250000+00:00"},
            "Owner": ALICE,
            "Reason": "botocore check",
            "OutputUrl": {},
            "MaxSessionDuration": "60",
            "AccessType": "Standard",
        })
    );
    assert_eq!(
        described[1]["DocumentName"],
        "AWS-StartPortForwardingSession"
    );
    assert_eq!(described[2]["AccessType"], "JustInTime");
    assert_eq!(described[3]["Details"], "started for paging");
    assert_eq!(
        described[3]["StartDate"],
        json!({"datetime": "2024-08-29T11:00:00.250000+00:00"})
    );
    assert!(described.iter().all(|s| s.get("EndDate").is_none()));

    // Eight active sessions in pages of three, with botocore's paginator.
    let paging = &out["paging"];
    assert_eq!(paging["pages"], 3);
    assert_eq!(paging["sizes"], json!([3, 3, 2]));
    assert_eq!(paging["next_tokens"], 2);
    assert_eq!(strs(&paging["ids"]), all);

    // botocore retried InternalServerError, then ThrottlingException.
    assert_eq!(out["retried"], json!({"sessions": 8, "attempts": 3}));
    assert!(fake.calls("DescribeSessions") > 20);
}

fn check_terminate(out: &Value, fake: &SsmControlFake) {
    let shell = out["shell"]["SessionId"].as_str().unwrap();
    assert_eq!(out["terminated"], json!({"SessionId": shell}));
    assert_eq!(out["terminated_again"], json!({"SessionId": shell}));
    assert_eq!(
        out["terminated_unknown"],
        json!({"SessionId": "alice-00000000000000000"})
    );
    let record = &out["terminated_record"];
    assert_eq!(record["status"], "Terminated");
    assert_eq!(
        record["history"],
        json!(["Connecting", "Connected", "Terminating", "Terminated"])
    );
    let end = datetime!(2024-08-29 11:01:30.250 UTC);
    assert_eq!(
        record["end_date"],
        json!(end.unix_timestamp_nanos() / 1_000_000)
    );
    assert_eq!(record["tokens_issued"], 2);

    // Held in Terminating: still Active, not yet History.
    let all = strs(&out["filters"]["all"]);
    let held = all[4];
    assert_eq!(strs(&out["held"]["active"]), [held]);
    assert_eq!(strs(&out["held"]["history"]), [shell]);
    let history = out["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["SessionId"], shell);
    assert_eq!(history[0]["Status"], "Terminated");
    assert_eq!(
        history[0]["EndDate"],
        json!({"datetime": "2024-08-29T11:01:30.250000+00:00"})
    );
    assert_eq!(history[1]["SessionId"], held);
    assert!(history[1]["EndDate"].is_object());
    assert_eq!(strs(&out["history_by_id"]), [shell]);
    let active = strs(&out["active_after"]);
    assert_eq!(active.len(), 6);
    assert!(!active.contains(&shell) && !active.contains(&held));
    assert_eq!(
        fake.session(held).unwrap().status,
        SessionStatus::Terminated
    );
}
