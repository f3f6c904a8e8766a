//! The resume fault knobs (`ssm.md` §2.11): close frames, periodic closes,
//! a half-open socket, an agent restarting its sequence, and the control
//! plane's ResumeSession failures and latency.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::super::AgentScenario;
use super::super::codec::payload;
use super::client::{Client, Frame, call_raw, resume, shell_setup};
use crate::fakes::ssm::{ResumeFailure, SessionStatus};

/// Reads until a close frame (or the socket's end); its code.
async fn close_code(c: &mut Client) -> Option<u16> {
    loop {
        match c
            .frame_within(Duration::from_secs(4))
            .await
            .expect("no close")
        {
            Frame::Close(code) => return code,
            Frame::Ended => return None,
            Frame::Message(_) => {}
        }
    }
}

#[tokio::test]
async fn close_socket_sends_the_code_and_the_session_resumes() {
    let (control, agent, s) = shell_setup(AgentScenario::default()).await;
    let mut c = Client::open(&s.url, &s.token).await;
    c.handshake().await;
    assert!(agent.close_socket(&s.id, 1000, "hourly"));
    assert_eq!(close_code(&mut c).await, Some(1000));
    let stats = agent.wait_for(&s.id, |st| !st.attached).await;
    assert_eq!(stats.closes_sent, 1);
    assert_eq!(
        control.session(&s.id).unwrap().status,
        SessionStatus::Disconnected
    );
    let r = resume(&control, &s.id).await;
    c.redial(&r.url, &r.token).await;
    assert_eq!(c.echo(b"after").await.payload, b"after");
    let stats = agent.stats(&s.id).unwrap();
    assert_eq!(stats.redials_accepted, 1);
    assert_eq!(stats.opens.len(), 2);
}

#[tokio::test]
async fn close_every_closes_after_each_attach() {
    let scenario = AgentScenario {
        close_every: Some(Duration::from_millis(400)),
        ..AgentScenario::default()
    };
    let (control, agent, s) = shell_setup(scenario).await;
    let mut c = Client::open(&s.url, &s.token).await;
    let attached = Instant::now();
    c.handshake().await;
    assert_eq!(close_code(&mut c).await, Some(1000));
    assert!(attached.elapsed() >= Duration::from_millis(400));
    let r = resume(&control, &s.id).await;
    c.redial(&r.url, &r.token).await;
    let attached = Instant::now();
    assert_eq!(c.echo(b"x").await.payload, b"x");
    assert_eq!(close_code(&mut c).await, Some(1000));
    assert!(attached.elapsed() >= Duration::from_millis(400));
    let stats = agent.wait_for(&s.id, |st| st.closes_sent == 2).await;
    assert_eq!(stats.redials_accepted, 1);
}

#[tokio::test]
async fn go_silent_withholds_everything_until_a_redial() {
    let (control, agent, s) = shell_setup(AgentScenario::default()).await;
    let mut c = Client::open(&s.url, &s.token).await;
    c.handshake().await;
    assert!(agent.go_silent(&s.id));
    agent.wait_for(&s.id, |st| st.silent).await;
    let sent = c.send(payload::OUTPUT, b"lost?").await;
    // Nothing at all: no ack, no echo, no close, no retransmission.
    assert!(
        c.frame_within(Duration::from_millis(700)).await.is_none(),
        "the silent socket spoke"
    );
    let stats = agent.stats(&s.id).unwrap();
    assert!(stats.attached && stats.shell_input.is_empty());
    // The client resumes and resends its unacked message on the new socket.
    let r = resume(&control, &s.id).await;
    c.redial(&r.url, &r.token).await;
    c.send_raw(sent.encode()).await;
    let echo = c.expect_stream(payload::OUTPUT).await;
    assert_eq!(echo.payload, b"lost?");
    c.ack_of(sent.sequence_number).await;
    let stats = agent.stats(&s.id).unwrap();
    assert!(!stats.silent);
    assert_eq!(stats.redials_accepted, 1);
    assert_eq!(stats.shell_input, b"lost?");
}

#[tokio::test]
async fn restart_sequence_starts_the_agents_counter_again_at_zero() {
    let (control, agent, s) = shell_setup(AgentScenario::default()).await;
    let mut c = Client::open(&s.url, &s.token).await;
    c.handshake().await;
    let before = c.echo(b"one").await;
    assert!(before.sequence_number >= 2);
    // An unacked agent message, lost by the restart.
    agent.send_stream(&s.id, payload::OUTPUT, b"unacked".to_vec());
    c.next_stream().await.unwrap();
    assert!(agent.restart_sequence(&s.id));
    assert!(agent.drop_socket(&s.id));
    agent.wait_for(&s.id, |st| !st.attached).await;
    let r = resume(&control, &s.id).await;
    c.redial(&r.url, &r.token).await;
    c.dedup = false;
    let sent = c.send(payload::OUTPUT, b"two").await;
    let after = c.next_stream().await.unwrap();
    assert_eq!(
        (after.sequence_number, after.payload.as_slice()),
        (0, &b"two"[..])
    );
    c.ack_of(sent.sequence_number).await;
    let stats = agent.stats(&s.id).unwrap();
    assert!(stats.sequence_restarted);
}

#[tokio::test]
async fn fail_resume_answers_throttling_then_500_then_a_token() {
    let (control, _agent, s) = shell_setup(AgentScenario::default()).await;
    control.fail_resume(2, ResumeFailure::Throttling);
    control.fail_resume(1, ResumeFailure::InternalError);
    let body = json!({ "SessionId": s.id });
    for _ in 0..2 {
        let (status, out) = call_raw(&control, "ResumeSession", body.clone()).await;
        assert_eq!(status, 400);
        assert_eq!(
            out,
            json!({"__type": "ThrottlingException", "message": "Rate exceeded"})
        );
    }
    let (status, out) = call_raw(&control, "ResumeSession", body.clone()).await;
    assert_eq!(
        (status, out["__type"].as_str()),
        (500, Some("InternalServerError"))
    );
    assert_eq!(
        control.session(&s.id).unwrap().tokens_issued.len(),
        1,
        "a token was issued"
    );
    let (status, out) = call_raw(&control, "ResumeSession", body.clone()).await;
    assert_eq!(status, 200);
    assert!(!out["TokenValue"].as_str().unwrap().is_empty());
    assert_eq!(control.calls("ResumeSession"), 4);
    let errors: Vec<_> = control
        .calls_of("ResumeSession")
        .into_iter()
        .map(|c| c.error)
        .collect();
    assert_eq!(
        errors,
        [
            Some("ThrottlingException".to_owned()),
            Some("ThrottlingException".to_owned()),
            Some("InternalServerError".to_owned()),
            None
        ]
    );
    // A forgotten session no longer exists for ResumeSession.
    control.forget_session(&s.id);
    let (status, out) = call_raw(&control, "ResumeSession", body).await;
    assert_eq!(
        (status, out["__type"].as_str()),
        (400, Some("DoesNotExistException"))
    );
}

#[tokio::test]
async fn resume_latency_delays_only_resume_session() {
    let (control, _agent, s) = shell_setup(AgentScenario::default()).await;
    let latency = Duration::from_millis(500);
    control.set_resume_latency(latency);
    let slow = {
        let control = control.view();
        let id = s.id.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let (status, _) = call_raw(&control, "ResumeSession", json!({ "SessionId": id })).await;
            (status, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Other calls are not held up meanwhile.
    let started = Instant::now();
    let (status, _) = call_raw(&control, "DescribeSessions", json!({ "State": "Active" })).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_millis(300));
    let (status, elapsed) = slow.await.unwrap();
    assert_eq!(status, 200);
    assert!(elapsed >= latency, "{elapsed:?}");
    control.set_resume_latency(Duration::ZERO);
    let started = Instant::now();
    resume(&control, &s.id).await;
    assert!(started.elapsed() < latency);
}
