//! Resuming a data channel (`ssm.md` §2.11) against the fake agent of
//! session-testkit (written from ssm.md apart from our client): 50 MiB each
//! way through one forwarded connection while the fake drops the socket,
//! closes it with 1000 every few seconds, goes silent (half-open), loses,
//! duplicates and reorders messages, withholds acks, answers ResumeSession
//! with throttling and 5xx, and encrypts with a slow KMS. Each transfer
//! arrives byte-identical (SHA-256) or the channel ends with a typed reason
//! (an agent that restarted its sequence, a session the service forgot, a
//! resume deadline that passed) — never silent corruption, never a hang.
//! Each test prints what it survived (resumes, faults, bytes checked).
#![cfg(feature = "ssm")]

mod ssm_port_common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use session_aws::ssm::port;
use session_aws::ssm::{
    ChannelEnd, ChannelEvent, ChannelOptions, ChannelResume, DataChannel, Incoming, PayloadType,
    ResumeBudget, SsmConfig,
};
use session_core::SystemClock;
use session_testkit::fakes::ssm::ResumeFailure;
use session_testkit::fakes::ssm_agent::{AgentScenario, RandomFaults, SessionStats};
use ssm_port_common::{
    CHUNK, LIMIT, Progress, TARGET, World, api, local_listener, open_port_resumable,
    receive_stream, round_trip, send_stream, transfer_target, world,
};
use tokio::net::TcpStream;
use uuid::Uuid;

/// Bytes each way in the transfers.
const MIB: usize = 50;

/// A budget for tests: quick tries, a 60 s deadline, 2 s of silence.
fn budget() -> ResumeBudget {
    ResumeBudget::default()
        .with_deadline(Duration::from_secs(60))
        .with_backoff(Duration::from_millis(50), Duration::from_millis(500))
        .with_silence(Duration::from_secs(2))
}

/// What a transfer saw.
struct Outcome {
    world: Arc<World>,
    id: String,
    events: Vec<ChannelEvent>,
    elapsed: Duration,
}

impl Outcome {
    fn stats(&self) -> SessionStats {
        self.world.agent.stats(&self.id).expect("stats")
    }

    fn resumed(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, ChannelEvent::Resumed { .. }))
            .count()
    }

    fn failed_tries(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, ChannelEvent::AttemptFailed { .. }))
            .count()
    }

    /// One line of counts for the test output.
    fn report(&self, name: &str) {
        let stats = self.stats();
        eprintln!(
            "{name}: {MIB} MiB each way checked (SHA-256) in {:.1} s; resumes {}, failed tries {}, \
             redials accepted by the fake {}, closes sent {}, random faults {}, agent \
             retransmissions {}",
            self.elapsed.as_secs_f64(),
            self.resumed(),
            self.failed_tries(),
            stats.redials_accepted,
            stats.closes_sent,
            stats.random_faults,
            stats.retransmissions
        );
    }
}

/// Waits until the local client has read `mib` MiB.
async fn read_past(progress: &Progress, mib: u64) {
    use std::sync::atomic::Ordering;
    while progress.down_got.load(Ordering::Relaxed) < mib << 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`MIB`] each way through one forwarded connection of a resumable
/// channel, with `faults` run beside it (given the world, the session id
/// and the progress); panics unless both directions arrive identical.
async fn transfer<F, Fut>(
    scenario: impl FnOnce(std::net::SocketAddr) -> AgentScenario,
    options: ChannelOptions,
    faults: F,
) -> Outcome
where
    F: FnOnce(Arc<World>, String, Arc<Progress>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let progress = Arc::new(Progress::default());
    let (target_addr, far) = transfer_target(MIB, Arc::clone(&progress)).await;
    let world = Arc::new(world(scenario(target_addr)).await);
    let (channel, id, established) =
        open_port_resumable(&world, target_addr.port(), options, budget()).await;
    let events = collect_events(channel.events());
    let (listener, local) = local_listener().await;
    let mut forward = tokio::spawn(async move { port::run(channel, &established, listener).await });
    let injector = tokio::spawn(faults(
        Arc::clone(&world),
        id.clone(),
        Arc::clone(&progress),
    ));

    let started = Instant::now();
    let conn = TcpStream::connect(local).await.unwrap();
    let (r, w) = conn.into_split();
    let near = async {
        tokio::join!(
            send_stream(w, MIB, 1, &progress.up_sent),
            receive_stream(r, &progress.down_got)
        )
    };
    let near = async {
        tokio::select! {
            done = near => done,
            ended = &mut forward => panic!(
                "the forward ended mid-transfer: {ended:?}; {progress}; the agent: {:?}",
                world.agent.stats(&id)
            ),
        }
    };
    let Ok((sent_up, (got_down, hash_down))) =
        tokio::time::timeout(Duration::from_secs(300), near).await
    else {
        panic!(
            "the transfer stalled: {progress}; the agent: {:?}; forward ended: {}",
            world.agent.stats(&id),
            forward.is_finished()
        );
    };
    let elapsed = started.elapsed();
    let (sent_down, (got_up, hash_up)) = tokio::time::timeout(LIMIT, far)
        .await
        .expect("the target finished")
        .expect("no panic");
    let total = (MIB * CHUNK) as u64;
    assert_eq!(got_up, total, "bytes at the target");
    assert_eq!(got_down, total, "bytes at the local client");
    assert_eq!(hash_up, sent_up, "client → target byte-identical");
    assert_eq!(hash_down, sent_down, "target → client byte-identical");
    injector.abort();
    forward.abort();
    let events = events.lock().unwrap().clone();
    let outcome = Outcome {
        world,
        id,
        events,
        elapsed,
    };
    assert_eq!(outcome.stats().dropped_bad_digest, 0);
    outcome
}

fn collect_events(
    mut events: tokio::sync::broadcast::Receiver<ChannelEvent>,
) -> Arc<Mutex<Vec<ChannelEvent>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            into.lock().unwrap().push(event);
        }
    });
    seen
}

fn port_to(addr: std::net::SocketAddr) -> AgentScenario {
    AgentScenario::port_to(addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_drops_mid_transfer_are_resumed_without_a_byte_lost() {
    let outcome = transfer(
        port_to,
        ChannelOptions::default(),
        |world, id, progress| async move {
            for mib in [10, 25, 40] {
                read_past(&progress, mib).await;
                assert!(world.agent.drop_socket(&id), "dropped at {mib} MiB");
            }
        },
    )
    .await;
    outcome.report("socket drops");
    assert_eq!(outcome.resumed(), 3, "{:?}", outcome.events);
    assert_eq!(outcome.stats().redials_accepted, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_1000_every_two_seconds_is_resumed_each_time() {
    let outcome = transfer(
        |addr| {
            let mut scenario = port_to(addr);
            scenario.close_every = Some(Duration::from_secs(2));
            scenario
        },
        ChannelOptions::default(),
        |_, _, _| async {},
    )
    .await;
    outcome.report("close 1000 every 2 s");
    let stats = outcome.stats();
    assert!(stats.closes_sent >= 1, "{stats:?}");
    assert_eq!(stats.redials_accepted, stats.closes_sent, "{stats:?}");
    assert_eq!(outcome.resumed() as u64, stats.closes_sent);
}

/// About 5 % of the messages in each direction dropped, duplicated or
/// reordered, and the socket closed every 3 s on top.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_faults_both_ways_and_closes_arrive_identical() {
    let outcome = transfer(
        |addr| {
            let mut scenario = port_to(addr);
            scenario.faults.random = Some(RandomFaults {
                seed: 0x0015_5eed,
                drop_per_mille: 17,
                duplicate_per_mille: 17,
                reorder_per_mille: 16,
            });
            scenario.close_every = Some(Duration::from_secs(3));
            scenario
        },
        {
            let mut options = ChannelOptions::default();
            options.receiver.reorder_capacity = 100_000;
            options
        },
        |_, _, _| async {},
    )
    .await;
    outcome.report("5 % faults + close every 3 s");
    assert!(
        outcome.stats().random_faults > 1_000,
        "{:?}",
        outcome.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_socket_is_noticed_by_its_silence_and_resumed() {
    let outcome = transfer(
        port_to,
        ChannelOptions::default(),
        |world, id, progress| async move {
            read_past(&progress, 10).await;
            assert!(world.agent.go_silent(&id));
        },
    )
    .await;
    outcome.report("half-open");
    assert_eq!(outcome.resumed(), 1, "{:?}", outcome.events);
    assert!(
        outcome.events.iter().any(|e| matches!(
            e,
            ChannelEvent::Reconnecting { reason } if reason.contains("half-open")
        )),
        "{:?}",
        outcome.events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_acks_hold_the_transfer_up_and_lose_nothing() {
    let outcome = transfer(
        port_to,
        ChannelOptions::default(),
        |world, _, progress| async move {
            read_past(&progress, 10).await;
            world
                .agent
                .update_scenario(|s| s.faults.withhold_all_acks = true);
            tokio::time::sleep(Duration::from_secs(3)).await;
            world
                .agent
                .update_scenario(|s| s.faults.withhold_all_acks = false);
        },
    )
    .await;
    outcome.report("acks withheld for 3 s");
    assert!(outcome.stats().acks_withheld > 0, "{:?}", outcome.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_5xx_on_resume_session_are_retried() {
    let outcome = transfer(
        port_to,
        ChannelOptions::default(),
        |world, id, progress| async move {
            read_past(&progress, 10).await;
            world.control.fail_resume(3, ResumeFailure::Throttling);
            assert!(world.agent.drop_socket(&id));
            read_past(&progress, 30).await;
            world.control.fail_resume(2, ResumeFailure::InternalError);
            assert!(world.agent.drop_socket(&id));
        },
    )
    .await;
    outcome.report("throttled and 5xx ResumeSession");
    assert_eq!(outcome.resumed(), 2, "{:?}", outcome.events);
    // The SDK retries each call up to 3 times itself: the 3 throttles
    // fail one of our tries, the two 5xx are absorbed by one call.
    let calls = outcome.world.control.calls("ResumeSession");
    assert_eq!(calls, 3 + 1 + 2 + 1, "ResumeSession calls");
    assert!(outcome.failed_tries() >= 1, "{:?}", outcome.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_resume_session_is_waited_for() {
    let outcome = transfer(
        port_to,
        ChannelOptions::default(),
        |world, id, progress| async move {
            world.control.set_resume_latency(Duration::from_millis(700));
            read_past(&progress, 10).await;
            assert!(world.agent.drop_socket(&id));
        },
    )
    .await;
    outcome.report("ResumeSession taking 0.7 s");
    let after = outcome.events.iter().find_map(|e| match e {
        ChannelEvent::Resumed { after, .. } => Some(*after),
        _ => None,
    });
    assert!(
        after.is_some_and(|after| after >= Duration::from_millis(700)),
        "{:?}",
        outcome.events
    );
}

/// A short-lived forward for the tests whose channel must end: one echo
/// round trip, then `fault`; returns how the forward ended.
async fn forward_until_end(
    fault: impl FnOnce(&World, &str),
    budget: ResumeBudget,
    after_fault: impl FnOnce(TcpStream) -> tokio::task::JoinHandle<()>,
) -> (ChannelEnd, Duration) {
    let echo = ssm_port_common::echo_target().await;
    let world = world(port_to(echo)).await;
    let (channel, id, established) =
        open_port_resumable(&world, echo.port(), ChannelOptions::default(), budget).await;
    let (listener, local) = local_listener().await;
    let forward = tokio::spawn(async move { port::run(channel, &established, listener).await });
    let mut conn = TcpStream::connect(local).await.unwrap();
    assert_eq!(round_trip(&mut conn, b"before").await, b"before");
    fault(&world, &id);
    let started = Instant::now();
    let _writer = after_fault(conn);
    let end = tokio::time::timeout(Duration::from_secs(30), forward)
        .await
        .expect("the forward ended in time")
        .expect("no panic")
        .expect("ran");
    (end, started.elapsed())
}

fn keep_writing(mut conn: TcpStream) -> tokio::task::JoinHandle<()> {
    use tokio::io::AsyncWriteExt;
    tokio::spawn(async move {
        for i in 0u32..10_000 {
            if conn.write_all(&i.to_be_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// An agent that comes back with its sequence numbers restarted would have
/// its new messages taken for resends of old ones (and acked, and lost):
/// the channel ends, naming it, instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_restarts_its_sequence_ends_the_channel_with_the_reason() {
    let (end, _) = forward_until_end(
        |world, id| {
            assert!(world.agent.restart_sequence(id));
            assert!(world.agent.drop_socket(id));
        },
        budget(),
        keep_writing,
    )
    .await;
    let ChannelEnd::Broken(reason) = &end else {
        panic!("ended with {end:?}")
    };
    assert!(reason.contains("restarted its sequence"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_service_forgot_ends_as_gone() {
    let (end, _) = forward_until_end(
        |world, id| {
            world.control.forget_session(id);
            assert!(world.agent.drop_socket(id));
        },
        budget(),
        keep_writing,
    )
    .await;
    let ChannelEnd::Gone(reason) = &end else {
        panic!("ended with {end:?}")
    };
    assert!(reason.contains("no longer knows"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_stops_at_its_deadline() {
    let deadline = Duration::from_secs(2);
    let (end, took) = forward_until_end(
        |world, id| {
            world
                .control
                .fail_resume(10_000, ResumeFailure::InternalError);
            assert!(world.agent.drop_socket(id));
        },
        budget()
            .with_deadline(deadline)
            .with_backoff(Duration::from_millis(20), Duration::from_millis(200)),
        keep_writing,
    )
    .await;
    let ChannelEnd::Lost(reason) = &end else {
        panic!("ended with {end:?}")
    };
    assert!(reason.contains("could not resume within 2 s"), "{reason}");
    // The last try either failed with the 5xx (after the SDK's own three
    // attempts) or was cut off at the deadline while retrying it.
    assert!(
        reason.contains("InternalServerError") || reason.contains("still running at the deadline"),
        "{reason}"
    );
    assert!(took < deadline + Duration::from_secs(2), "took {took:?}");
}

/// A shell printing `seq 1 100000` (the fake's shell echoes the input it
/// decrypted, so the lines go both ways) while about 5 % of the messages
/// are lost, duplicated or reordered each way and the socket is closed
/// every second: every line arrives, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shells_seq_1_100000_survives_faults_and_closes() {
    let mut scenario = AgentScenario::default();
    scenario.faults.random = Some(RandomFaults {
        seed: 0x5e9,
        drop_per_mille: 17,
        duplicate_per_mille: 17,
        reorder_per_mille: 16,
    });
    scenario.close_every = Some(Duration::from_secs(1));
    let world = world(scenario).await;
    let api = api(&world).await;
    let ticket = api
        .start_session(&SsmConfig::shell(TARGET))
        .await
        .expect("StartSession");
    let mut options = ChannelOptions::default();
    options.resume = Some(ChannelResume::new(
        Arc::new(api.resume_tickets(&ticket.session_id)),
        budget(),
    ));
    let (mut channel, _) = DataChannel::open(
        &ticket,
        Uuid::new_v4(),
        options,
        Arc::new(SystemClock),
        "session 'shell'",
    )
    .await
    .expect("opened");
    let events = collect_events(channel.events());
    let lines: String = (1..=100_000).map(|n| format!("{n}\n")).collect();
    let sender = channel.sender();
    let input = lines.clone().into_bytes();
    let typing = tokio::spawn(async move {
        for chunk in input.chunks(1024) {
            sender
                .send(PayloadType::Output, chunk.to_vec())
                .await
                .expect("send");
        }
    });
    let started = Instant::now();
    let mut got = Vec::with_capacity(lines.len());
    while got.len() < lines.len() {
        match tokio::time::timeout(Duration::from_secs(120), channel.recv()).await {
            Ok(Some(Incoming::Output(bytes))) => got.extend(bytes),
            Ok(Some(_)) => {}
            other => panic!(
                "the shell stopped after {} bytes: {other:?}; {:?}",
                got.len(),
                channel.end()
            ),
        }
    }
    typing.await.expect("typed");
    assert_eq!(got.len(), lines.len());
    assert!(got == lines.as_bytes(), "the lines arrived in order, once");
    let stats = world.agent.stats(&ticket.session_id).expect("stats");
    let resumed = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, ChannelEvent::Resumed { .. }))
        .count();
    eprintln!(
        "seq 1 100000: {} bytes checked in {:.1} s; resumes {resumed}, closes sent {}, random \
         faults {}",
        got.len(),
        started.elapsed().as_secs_f64(),
        stats.closes_sent,
        stats.random_faults
    );
    // About 1,150 messages each way: some 5 % of them hit.
    assert!(stats.random_faults > 20, "{} faults", stats.random_faults);
}

/// A ResumeSession that answers after the deadline does not hold the
/// channel past it: the try is cut off at the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_session_slower_than_the_deadline_is_cut_off() {
    let deadline = Duration::from_secs(1);
    let (end, took) = forward_until_end(
        |world, id| {
            world.control.set_resume_latency(Duration::from_secs(6));
            assert!(world.agent.drop_socket(id));
        },
        budget().with_deadline(deadline),
        keep_writing,
    )
    .await;
    let ChannelEnd::Lost(reason) = &end else {
        panic!("ended with {end:?}")
    };
    assert!(reason.contains("could not resume within 1 s"), "{reason}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}
