//! The `awsSsm` provider through the conformance suites (the action suite
//! with its live section, and the manager's live suite), directly and
//! boxed, for a shell and for a port forward, against the fake SSM control
//! plane and the fake agent of session-testkit (written from ssm.md apart
//! from our client, and checked by botocore and pyssm-client).
//!
//! What "available" means for the probe: the service's session is
//! `Connected` and the agent has a data channel attached for it.
#![cfg(feature = "ssm")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use session_aws::AwsCredentials;
use session_aws::ssm::{SsmClientConfig, SsmConfig, SsmProvider, SsmState};
use session_core::{
    ActionContext, InMemorySecretStore, ManualClock, Secret, Session, SessionAction, SessionType,
};
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::ssm::SessionStatus as ServiceStatus;
use session_testkit::fakes::ssm_agent::{AgentScenario, SsmAgentFake};
use session_testkit::suites::{ActionFixture, LiveFixture, action_conformance, live_conformance};

const TARGET: &str = "i-0123456789abcdef0";
const UNKNOWN_TARGET: &str = "i-0fffffffffffffff0";

struct World {
    control: Arc<SsmControlFake>,
    agent: Arc<SsmAgentFake>,
    provider: Arc<SsmProvider>,
    _echo: tokio::task::JoinHandle<()>,
}

async fn echo_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    (address, task)
}

/// The SSM client of these tests: the fake's endpoint, credentials of its
/// own for sessions without a parent.
fn client(control: &SsmControlFake) -> SsmClientConfig {
    SsmClientConfig::builder()
        .endpoint_url(control.endpoint())
        .region("eu-west-1")
        .default_credentials(AwsCredentials {
            access_key_id: "AKIACONFORMANCE00000".into(),
            secret_access_key: Secret::new("conformance"),
            session_token: None,
            expiration: None,
        })
        .build()
        .expect("config")
}

async fn world() -> World {
    world_with(true).await
}

/// A world whose provider resumes lost data channels in place, or not:
/// the manager's live suite drops connections and expects them to end
/// (`NetworkLost`) so that the manager resumes, which an in-place resume
/// hides. `tests/ssm_resume.rs` covers the in-place resume.
async fn world_with(resume_in_place: bool) -> World {
    let (echo, echo_task) = echo_server().await;
    let control = SsmControlFake::start().await;
    control.add_target(TARGET);
    let agent = SsmAgentFake::start(&control, AgentScenario::port_to(echo)).await;
    let client = client(&control);
    World {
        control: Arc::new(control),
        agent: Arc::new(agent),
        provider: Arc::new(if resume_in_place {
            SsmProvider::new(client)
        } else {
            SsmProvider::new(client).with_resume(None)
        }),
        _echo: echo_task,
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        time::macros::datetime!(2030-01-01 0:00 UTC),
    ))
}

fn session(name: &str, config: &SsmConfig) -> Session {
    let mut session = Session::new(name, SessionType::AwsSsm).expect("session");
    session.config.set(config).expect("config");
    session
}

fn action_fixture(world: &World, config: &SsmConfig) -> ActionFixture {
    let clock = clock();
    let control = Arc::clone(&world.control);
    let agent = Arc::clone(&world.agent);
    let mut failing = config.clone();
    failing.target = UNKNOWN_TARGET.into();
    ActionFixture {
        session: session("ssm", config),
        failing_session: Some(session("unreachable", &failing)),
        ctx: ActionContext::new(clock.clone(), Arc::new(InMemorySecretStore::new())),
        clock,
        probe: Arc::new(move |_ctx: ActionContext, session: Session| {
            let state: SsmState = session.state.get().unwrap_or_default();
            let connected = control.sessions().iter().any(|s| {
                s.session_id == state.ssm_session_id && s.status == ServiceStatus::Connected
            });
            let attached = agent
                .stats(&state.ssm_session_id)
                .is_some_and(|stats| stats.attached);
            async move { (connected && attached).then_some(state.ssm_session_id) }.boxed()
        }),
        pause_before_rotate: Duration::ZERO,
    }
}

/// Drops the websocket of every data channel the agent holds, as a network
/// failure would.
fn live_fixture(world: &World, config: &SsmConfig) -> LiveFixture {
    let agent = Arc::clone(&world.agent);
    LiveFixture {
        session: session("ssm-live", config),
        clock: clock(),
        drop_connection: Arc::new(move |_id| {
            let mut dropped = false;
            for (id, stats) in agent.all_stats() {
                if stats.attached {
                    dropped |= agent.drop_socket(&id);
                }
            }
            dropped
        }),
    }
}

fn shell() -> SsmConfig {
    SsmConfig::shell(TARGET)
}

fn port() -> SsmConfig {
    SsmConfig::port_forward(TARGET, 5432)
}

#[tokio::test]
async fn a_shell_session_direct() {
    let world = world().await;
    action_conformance(&*world.provider, &action_fixture(&world, &shell())).await;
    // Every remote session the suite opened was terminated.
    for record in world.control.sessions() {
        assert_eq!(record.status, ServiceStatus::Terminated, "{record:?}");
    }
}

#[tokio::test]
async fn a_port_forward_boxed() {
    let world = world().await;
    let boxed: Box<dyn SessionAction> = Box::new(Arc::clone(&world.provider));
    action_conformance(&boxed, &action_fixture(&world, &port())).await;
}

#[tokio::test]
async fn a_shell_session_through_the_manager() {
    let world = world_with(false).await;
    live_conformance(world.provider.clone(), &live_fixture(&world, &shell())).await;
}

#[tokio::test]
async fn a_port_forward_through_the_manager_boxed() {
    let world = world_with(false).await;
    let boxed: Box<dyn SessionAction> = Box::new(Arc::clone(&world.provider));
    live_conformance(Arc::new(boxed), &live_fixture(&world, &port())).await;
    // The drop's session was terminated when the manager started a new
    // one (no ResumeSession yet), and the new one by stop: none is left
    // running until the idle time-out.
    let records = world.control.sessions();
    assert!(records.len() >= 2, "{records:?}");
    for record in records {
        assert_eq!(record.status, ServiceStatus::Terminated, "{record:?}");
    }
}

/// `session` moved to `to` (pending for a start, stopping for a stop), as
/// the manager would before calling the provider.
fn moved(session: &Session, to: session_core::SessionStatus, clock: &ManualClock) -> Session {
    use session_core::Clock;
    let mut moved = session.clone();
    moved
        .transition(to, clock.now())
        .expect("a valid transition");
    moved
}

fn pending(session: &Session, clock: &ManualClock) -> Session {
    moved(session, session_core::SessionStatus::Pending, clock)
}

fn stopping(session: &Session, clock: &ManualClock) -> Session {
    moved(session, session_core::SessionStatus::Stopping, clock)
}

fn service_status(world: &World, session: &Session) -> ServiceStatus {
    let state: SsmState = session.state.get().expect("state");
    world
        .control
        .sessions()
        .into_iter()
        .find(|s| s.session_id == state.ssm_session_id)
        .expect("the service knows it")
        .status
}

/// The agent's side went away (the socket dropped, nothing resumed): the
/// handle says the network was lost, and stop still terminates the remote
/// session through the API.
#[tokio::test]
async fn stop_works_when_the_agent_is_gone() {
    let world = world_with(false).await;
    let fixture = action_fixture(&world, &port());
    let (started, handle) = world
        .provider
        .start_live(&fixture.ctx, &pending(&fixture.session, &fixture.clock))
        .await
        .expect("start");
    for (id, _) in world.agent.all_stats() {
        world.agent.drop_socket(&id);
    }
    let reason = tokio::time::timeout(Duration::from_secs(10), handle.ended())
        .await
        .expect("the drop is seen");
    assert!(reason.is_resumable(), "{reason:?}");
    let stopped = tokio::time::timeout(
        Duration::from_secs(10),
        world
            .provider
            .stop(&fixture.ctx, &stopping(&started, &fixture.clock)),
    )
    .await
    .expect("stop in time")
    .expect("stop");
    assert_eq!(stopped.status(), session_core::SessionStatus::Inactive);
    assert_eq!(service_status(&world, &started), ServiceStatus::Terminated);
}

/// `rotate` of a held session resumes its data channel in place: a new
/// socket with the same ClientId for the same remote session, the handle
/// still up. Once the service has forgotten the session, rotate fails with
/// NotFound (starting a new one is the caller's choice), and the
/// connection ends as closed by the service.
#[tokio::test]
async fn rotate_resumes_the_data_channel_in_place() {
    let world = world().await;
    let fixture = action_fixture(&world, &port());
    let (started, handle) = world
        .provider
        .start_live(&fixture.ctx, &pending(&fixture.session, &fixture.clock))
        .await
        .expect("start");
    let state: SsmState = started.state.get().expect("state");
    let rotating = moved(
        &started,
        session_core::SessionStatus::Rotating,
        &fixture.clock,
    );
    let rotated = tokio::time::timeout(
        Duration::from_secs(20),
        world.provider.rotate(&fixture.ctx, &rotating),
    )
    .await
    .expect("rotated in time")
    .expect("rotate");
    assert_eq!(rotated.status(), session_core::SessionStatus::Active);
    // The fake counts the redial once its session task has taken the
    // new socket, a moment after the open that rotate waited for.
    let stats = world
        .agent
        .wait_for(&state.ssm_session_id, |s| s.redials_accepted > 0)
        .await;
    assert_eq!(stats.redials_accepted, 1);
    assert_eq!(world.control.calls("ResumeSession"), 1);
    assert!(handle.end_reason().is_none(), "the handle is still up");
    assert_eq!(world.control.sessions().len(), 1, "no new remote session");

    world.control.forget_session(&state.ssm_session_id);
    let rotating = moved(
        &rotated,
        session_core::SessionStatus::Rotating,
        &fixture.clock,
    );
    let error = tokio::time::timeout(
        Duration::from_secs(20),
        world.provider.rotate(&fixture.ctx, &rotating),
    )
    .await
    .expect("answered in time")
    .expect_err("the service forgot it");
    assert!(
        matches!(error, session_core::Error::NotFound { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("no longer knows"), "{error}");
    let reason = tokio::time::timeout(Duration::from_secs(10), handle.ended())
        .await
        .expect("ended");
    assert!(!reason.is_resumable(), "{reason:?}");
}

/// A stop while the channel is resuming (ResumeSession keeps failing):
/// it does not wait for the resume deadline, and terminates the remote
/// session through the API.
#[tokio::test]
async fn stop_works_while_the_channel_is_resuming() {
    let world = world().await;
    let fixture = action_fixture(&world, &port());
    let (started, handle) = world
        .provider
        .start_live(&fixture.ctx, &pending(&fixture.session, &fixture.clock))
        .await
        .expect("start");
    world.control.fail_resume(
        1_000,
        session_testkit::fakes::ssm::ResumeFailure::InternalError,
    );
    for (id, _) in world.agent.all_stats() {
        world.agent.drop_socket(&id);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(handle.end_reason().is_none(), "still resuming, not ended");
    let stopped = tokio::time::timeout(
        Duration::from_secs(30),
        world
            .provider
            .stop(&fixture.ctx, &stopping(&started, &fixture.clock)),
    )
    .await
    .expect("stop in time")
    .expect("stop");
    assert_eq!(stopped.status(), session_core::SessionStatus::Inactive);
    assert_eq!(service_status(&world, &started), ServiceStatus::Terminated);
    assert_eq!(
        handle.end_reason(),
        Some(session_core::EndReason::ClosedByUser)
    );
}

/// A frozen agent (it takes in nothing, so the TerminateSession flag is
/// never answered): stop gives up on the flag after its wait, terminates
/// through the API, and returns.
#[tokio::test]
async fn stop_works_when_the_agent_is_frozen() {
    let mut world = world().await;
    let provider = SsmProvider::new(client(&world.control))
        .with_stop_timeouts(Duration::from_millis(300), Duration::from_secs(10));
    world.provider = Arc::new(provider);
    let fixture = action_fixture(&world, &shell());
    let (started, handle) = world
        .provider
        .start_live(&fixture.ctx, &pending(&fixture.session, &fixture.clock))
        .await
        .expect("start");
    world
        .agent
        .update_scenario(|s| s.faults.drop_incoming = (0..100_000).collect());
    let began = std::time::Instant::now();
    let stopped = world
        .provider
        .stop(&fixture.ctx, &stopping(&started, &fixture.clock))
        .await
        .expect("stop");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(stopped.status(), session_core::SessionStatus::Inactive);
    assert_eq!(
        handle.end_reason(),
        Some(session_core::EndReason::ClosedByUser)
    );
    assert_eq!(service_status(&world, &started), ServiceStatus::Terminated);
    let state: SsmState = started.state.get().expect("state");
    let flags = world.agent.stats(&state.ssm_session_id).expect("stats");
    assert!(
        !flags.flags_received.contains(&2),
        "the frozen agent never took the flag in: {flags:?}"
    );
}

/// The agent confirmed the end (`channel_closed` after the flag): a
/// TerminateSession API call that fails afterwards does not fail the stop.
#[tokio::test]
async fn stop_confirmed_by_the_agent_survives_a_failing_terminate_api() {
    let world = world().await;
    let fixture = action_fixture(&world, &shell());
    let (started, _handle) = world
        .provider
        .start_live(&fixture.ctx, &pending(&fixture.session, &fixture.clock))
        .await
        .expect("start");
    world
        .control
        .fail_next_call_with("TerminateSession", 400, "AccessDeniedException");
    let stopped = world
        .provider
        .stop(&fixture.ctx, &stopping(&started, &fixture.clock))
        .await
        .expect("stop");
    assert_eq!(stopped.status(), session_core::SessionStatus::Inactive);
    let calls = world.control.calls_of("TerminateSession");
    assert_eq!(
        calls.first().and_then(|c| c.error.as_deref()),
        Some("AccessDeniedException"),
        "{calls:?}"
    );
}

/// Where a port forward listens: the caller's port first
/// ([`ActionContext::live`]), else the session's `localPortNumber`; a port
/// in use fails at once and terminates the remote session it opened.
#[tokio::test]
async fn a_port_forward_listens_where_asked_and_a_taken_port_fails_at_once() {
    let world = world().await;
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("address")
            .port()
    };
    let mut config = port();
    let configured = free_port();
    config
        .parameters
        .insert("localPortNumber".into(), vec![configured.to_string()]);
    let fixture = action_fixture(&world, &config);
    let (started, handle) = world
        .provider
        .start_live(&fixture.ctx, &pending(&fixture.session, &fixture.clock))
        .await
        .expect("start");
    assert_eq!(handle.addresses()[0].port(), configured);
    let state: SsmState = started.state.get().expect("state");
    assert_eq!(
        state.listen_address,
        Some(format!("127.0.0.1:{configured}"))
    );

    // The caller's port wins over the setting; the session above still
    // holds the configured one.
    let asked = free_port();
    let other = session("other", &config);
    let ctx = fixture
        .ctx
        .clone()
        .with_live(session_core::LiveOptions::default().with_listen_port(asked));
    let (_, handle) = world
        .provider
        .start_live(&ctx, &pending(&other, &fixture.clock))
        .await
        .expect("start on the asked port");
    assert_eq!(handle.addresses()[0].port(), asked);

    // The configured port is taken (by the first session): a third
    // session with the same setting fails with "address in use", and the
    // remote session it opened is terminated.
    let third = session("third", &config);
    let error = world
        .provider
        .start_live(&fixture.ctx, &pending(&third, &fixture.clock))
        .await
        .expect_err("the port is taken");
    assert!(error.to_string().contains("address in use"), "{error}");
    let newest = world.control.sessions().pop().expect("a session");
    assert_eq!(newest.status, ServiceStatus::Terminated, "{newest:?}");
}

/// Stop sends Flag TerminateSession only to agents newer than 2.3.722.0;
/// an older one is ended through the API alone. Either way the remote
/// session ends terminated.
#[tokio::test]
async fn the_terminate_flag_follows_the_agent_version() {
    for (version, flag) in [("2.3.722.0", false), ("2.3.722.1", true)] {
        let world = world().await;
        world
            .agent
            .update_scenario(|s| s.agent_version = version.to_owned());
        let fixture = action_fixture(&world, &shell());
        let (started, _handle) = world
            .provider
            .start_live(&fixture.ctx, &pending(&fixture.session, &fixture.clock))
            .await
            .expect("start");
        let state: SsmState = started.state.get().expect("state");
        assert_eq!(state.agent_version.as_deref(), Some(version));
        world
            .provider
            .stop(&fixture.ctx, &stopping(&started, &fixture.clock))
            .await
            .expect("stop");
        let stats = world.agent.stats(&state.ssm_session_id).expect("stats");
        assert_eq!(
            stats.flags_received.contains(&2),
            flag,
            "agent {version}: {stats:?}"
        );
        assert_eq!(service_status(&world, &started), ServiceStatus::Terminated);
    }
}

/// An agent too old for smux (3.0.196.0): the provider forwards in basic
/// mode, through the conformance suite and with bytes echoed through the
/// local port; the fake agent saw no smux stream.
#[tokio::test]
async fn an_old_agent_gets_a_basic_mode_port_forward() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let world = world().await;
    world
        .agent
        .update_scenario(|s| s.agent_version = "3.0.196.0".to_owned());
    action_conformance(&*world.provider, &action_fixture(&world, &port())).await;

    let fixture = action_fixture(&world, &port());
    let (started, handle) = world
        .provider
        .start_live(&fixture.ctx, &pending(&fixture.session, &fixture.clock))
        .await
        .expect("start");
    let mut stream = tokio::net::TcpStream::connect(handle.addresses()[0])
        .await
        .expect("connect");
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    stream.write_all(&data).await.expect("write");
    let mut back = vec![0u8; data.len()];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut back))
        .await
        .expect("echoed in time")
        .expect("read");
    assert_eq!(back, data);
    let state: SsmState = started.state.get().expect("state");
    let stats = world.agent.stats(&state.ssm_session_id).expect("stats");
    assert_eq!(stats.mux, Some(false), "{stats:?}");
    assert!(stats.smux_streams.is_empty(), "{stats:?}");
}
