//! A network simulation: a client and an agent endpoint, each with a
//! [`Sender`] and a [`Receiver`], joined by a network that drops,
//! duplicates, reorders and delays messages and acks, driven by simulated
//! time through [`Sender::next_deadline`] only.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use super::*;
use crate::ssm::message::{ClientMessage, MessageType, PayloadType};
use crate::ssm::payload::Acknowledgement;

const T0: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

/// splitmix64: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn percent(&mut self, p: u32) -> bool {
        self.next() % 100 < u64::from(p)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

#[derive(Debug, Clone)]
struct Network {
    loss_percent: u32,
    duplicate_percent: u32,
    min_delay_ms: u64,
    max_delay_ms: u64,
    /// A bottleneck towards the agent: each message occupies it for this
    /// long, one after another, so that what is sent faster queues (as
    /// at a slow agent or a slow path through the service). 0: none.
    to_agent_service_us: u64,
}

#[derive(Debug, Clone)]
struct Scenario {
    seed: u64,
    network: Network,
    window: usize,
    client_messages: usize,
    agent_messages: usize,
    /// A time when MGS loses the far side for a while: from `start`, for
    /// `length`, everything on the wire is lost; both senders get
    /// `pause_publication` at its start, and at its end
    /// `start_publication` plus a reconnect ([`Sender::resend_all`]).
    outage: Option<Outage>,
}

#[derive(Debug, Clone, Copy)]
struct Outage {
    start: Duration,
    length: Duration,
}

#[derive(Debug)]
struct Endpoint {
    side: Side,
    sender: Sender,
    receiver: Receiver,
    pending: VecDeque<Vec<u8>>,
    delivered: Vec<Vec<u8>>,
    next_id: u128,
}

impl Endpoint {
    fn new(side: Side, window: usize, messages: usize) -> Self {
        let tag = match side {
            Side::Client => 0xc1,
            Side::Agent => 0xa9,
        };
        Self {
            side,
            sender: Sender::new(
                side,
                SenderConfig {
                    window,
                    ..SenderConfig::default()
                },
            ),
            receiver: Receiver::new(side, ReceiverConfig::default()),
            pending: (0..messages).map(|i| payload(tag, i)).collect(),
            delivered: Vec::new(),
            next_id: 0,
        }
    }

    fn id(&mut self) -> Uuid {
        self.next_id += 1;
        let high = match self.side {
            Side::Client => 1u128 << 64,
            Side::Agent => 2u128 << 64,
        };
        Uuid::from_u128(high | self.next_id)
    }
}

fn payload(tag: u8, i: usize) -> Vec<u8> {
    let mut bytes = vec![tag];
    bytes.extend_from_slice(&(i as u64).to_be_bytes());
    bytes.resize(9 + i % 17, tag);
    bytes
}

/// What a run produced.
#[derive(Debug)]
struct Outcome {
    finished_after: Duration,
    client: Endpoint,
    agent: Endpoint,
}

/// Messages in flight, keyed by arrival time then a tie-breaker; the bool
/// says whether it travels to the agent.
type InFlight = BTreeMap<(OffsetDateTime, u64), (bool, Vec<u8>)>;

struct Wire<'a> {
    network: &'a Network,
    rng: Rng,
    in_flight: InFlight,
    serial: u64,
    down: bool,
    /// When the bottleneck towards the agent is free again.
    to_agent_free_at: OffsetDateTime,
}

impl Wire<'_> {
    fn transmit(&mut self, to_agent: bool, bytes: Vec<u8>, now: OffsetDateTime) {
        assert!(
            !self.down,
            "nothing may be written while publication is paused"
        );
        if self.rng.percent(self.network.loss_percent) {
            return;
        }
        let copies = if self.rng.percent(self.network.duplicate_percent) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self
                .rng
                .between(self.network.min_delay_ms, self.network.max_delay_ms);
            let mut arrival = now + Duration::from_millis(delay);
            if to_agent && self.network.to_agent_service_us > 0 {
                let service = Duration::from_micros(self.network.to_agent_service_us);
                arrival = arrival.max(self.to_agent_free_at) + service;
                self.to_agent_free_at = arrival;
            }
            self.serial += 1;
            self.in_flight
                .insert((arrival, self.serial), (to_agent, bytes.clone()));
        }
    }
}

fn send_pending(endpoint: &mut Endpoint, wire: &mut Wire<'_>, now: OffsetDateTime) {
    let to_agent = endpoint.side == Side::Client;
    while endpoint.sender.can_send() {
        let Some(payload) = endpoint.pending.pop_front() else {
            break;
        };
        let id = endpoint.id();
        let bytes = endpoint
            .sender
            .send(PayloadType::Output, payload, id, now)
            .expect("the window had room");
        wire.transmit(to_agent, bytes, now);
    }
}

fn arrive(endpoint: &mut Endpoint, wire: &mut Wire<'_>, bytes: &[u8], now: OffsetDateTime) {
    let message = ClientMessage::decode(bytes).expect("the network does not corrupt");
    if message.message_type == MessageType::Acknowledge {
        let ack = Acknowledgement::from_message(&message).expect("our own ack");
        endpoint.sender.on_ack(&ack, now);
        return;
    }
    let received = endpoint
        .receiver
        .on_message(message)
        .expect("only stream data and acks travel");
    if let Some(ack) = received.ack {
        let id = endpoint.id();
        let created = u64::try_from(now.unix_timestamp() * 1000).expect("after 1970");
        let bytes = ack.to_message(id, created).encode().expect("valid ack");
        wire.transmit(endpoint.side == Side::Client, bytes, now);
    }
    endpoint
        .delivered
        .extend(received.deliver.into_iter().map(|m| m.payload));
}

/// Runs `scenario` until every payload is delivered and acknowledged, or
/// `limit` of simulated time has passed (then `Err`).
fn run(scenario: &Scenario, limit: Duration) -> Result<Outcome, String> {
    let mut client = Endpoint::new(Side::Client, scenario.window, scenario.client_messages);
    let mut agent = Endpoint::new(Side::Agent, scenario.window, scenario.agent_messages);
    let mut wire = Wire {
        network: &scenario.network,
        rng: Rng(scenario.seed),
        in_flight: BTreeMap::new(),
        serial: 0,
        down: false,
        to_agent_free_at: T0,
    };
    let mut now = T0;
    // The outage's start and end, removed once they have happened.
    let mut outage_events: Vec<OffsetDateTime> = scenario
        .outage
        .map(|o| vec![T0 + o.start + o.length, T0 + o.start])
        .unwrap_or_default();
    loop {
        send_pending(&mut client, &mut wire, now);
        send_pending(&mut agent, &mut wire, now);
        let done = |e: &Endpoint| e.pending.is_empty() && e.sender.in_flight() == 0;
        if done(&client) && done(&agent) && wire.in_flight.is_empty() {
            return Ok(Outcome {
                finished_after: elapsed(T0, now),
                client,
                agent,
            });
        }
        let next = [
            wire.in_flight.keys().next().map(|(at, _)| *at),
            client.sender.next_deadline(),
            agent.sender.next_deadline(),
            outage_events.last().copied(),
        ]
        .into_iter()
        .flatten()
        .min()
        .ok_or("stalled: nothing in flight, no deadline, not done")?;
        assert!(next >= now, "time must not go backwards");
        now = next;
        if elapsed(T0, now) > limit {
            return Err(format!(
                "not finished after {limit:?}: client delivered {}, agent delivered {}, \
                 in flight {} / {}",
                client.delivered.len(),
                agent.delivered.len(),
                client.sender.in_flight(),
                agent.sender.in_flight(),
            ));
        }
        if outage_events.last().is_some_and(|at| *at <= now) {
            outage_events.pop();
            if wire.down {
                wire.down = false;
                for (endpoint, to_agent) in [(&mut client, true), (&mut agent, false)] {
                    endpoint.sender.resume(now);
                    for bytes in endpoint.sender.resend_all(now) {
                        wire.transmit(to_agent, bytes, now);
                    }
                }
            } else {
                wire.down = true;
                client.sender.pause(now);
                agent.sender.pause(now);
            }
        }
        while let Some(entry) = wire.in_flight.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (to_agent, bytes) = entry.remove();
            if wire.down {
                continue;
            }
            let endpoint = if to_agent { &mut agent } else { &mut client };
            arrive(endpoint, &mut wire, &bytes, now);
        }
        for (endpoint, to_agent) in [(&mut client, true), (&mut agent, false)] {
            let resent = endpoint
                .sender
                .poll_retransmit(now)
                .map_err(|gave_up| gave_up.to_string())?;
            for bytes in resent {
                wire.transmit(to_agent, bytes, now);
            }
        }
    }
}

fn assert_exactly_once_in_order(outcome: &Outcome, scenario: &Scenario) {
    for (delivered, tag, sent, to) in [
        (
            &outcome.agent.delivered,
            0xc1,
            scenario.client_messages,
            "agent",
        ),
        (
            &outcome.client.delivered,
            0xa9,
            scenario.agent_messages,
            "client",
        ),
    ] {
        assert_eq!(delivered.len(), sent, "payloads delivered to the {to}");
        let expected: Vec<_> = (0..sent).map(|i| payload(tag, i)).collect();
        assert!(
            *delivered == expected,
            "payloads to the {to} out of order or altered"
        );
    }
}

/// The simulated-time budget: 30 s plus 3 s per message of the longer
/// direction. Without loss a run takes a few round trips per window.
fn budget(scenario: &Scenario) -> Duration {
    let n = scenario.client_messages.max(scenario.agent_messages) as u64;
    let outage = scenario
        .outage
        .map_or(Duration::ZERO, |o| o.start + o.length);
    Duration::from_secs(30 + 3 * n) + outage
}

fn lossy() -> impl Strategy<Value = Scenario> {
    (
        any::<u64>(),
        0u32..=30,
        0u32..=20,
        0u64..=50,
        0u64..=300,
        1usize..=32,
        0usize..=60,
        0usize..=60,
        proptest::option::of((0u64..=5_000, 0u64..=20_000)),
    )
        .prop_map(
            |(seed, loss, dup, min, spread, window, c, a, outage)| Scenario {
                seed,
                network: Network {
                    loss_percent: loss,
                    duplicate_percent: dup,
                    min_delay_ms: min,
                    max_delay_ms: min + spread,
                    to_agent_service_us: 0,
                },
                window,
                client_messages: c,
                agent_messages: a,
                outage: outage.map(|(start, length)| Outage {
                    start: Duration::from_millis(start),
                    length: Duration::from_millis(length),
                }),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Loss, duplication, reordering and delay, of data and acks alike,
    /// sometimes with an outage (pause, then resume and resend everything):
    /// every payload arrives exactly once, in order, within the budget, and
    /// nothing is written while paused.
    #[test]
    fn lossy_network_delivers_everything_exactly_once_in_order(scenario in lossy()) {
        let outcome = run(&scenario, budget(&scenario)).map_err(TestCaseError::fail)?;
        assert_exactly_once_in_order(&outcome, &scenario);
        prop_assert!(outcome.finished_after <= budget(&scenario));
    }

    /// No loss and a constant delay below half the initial RTO: nothing is
    /// ever retransmitted (duplicates only cause re-acks).
    #[test]
    fn no_loss_means_no_retransmission(
        seed in any::<u64>(),
        delay in 0u64..=90,
        dup in 0u32..=30,
        window in 1usize..=32,
        c in 0usize..=60,
        a in 0usize..=60,
    ) {
        let scenario = Scenario {
            seed,
            network: Network {
                loss_percent: 0,
                duplicate_percent: dup,
                min_delay_ms: delay,
                max_delay_ms: delay,
                to_agent_service_us: 0,
            },
            window,
            client_messages: c,
            agent_messages: a,
            outage: None,
        };
        let outcome = run(&scenario, budget(&scenario)).map_err(TestCaseError::fail)?;
        assert_exactly_once_in_order(&outcome, &scenario);
        prop_assert_eq!(outcome.client.sender.counters().retransmissions, 0);
        prop_assert_eq!(outcome.agent.sender.counters().retransmissions, 0);
    }
}

/// A full window towards an agent slower than it (a 1 ms bottleneck per
/// message, 10 ms each way): the queue would hold a 4,096-message window
/// for 4 s, past every RTO. The congestion window keeps the queue short:
/// everything arrives, and few messages are sent twice. With the fixed
/// window alone the run collapsed: resends kept the queue full, and the
/// sender gave up on message 13,667 after 302 transmissions in 300 s.
#[test]
fn a_slow_agent_is_not_flooded_with_retransmissions() {
    let mut scenario = steady(4096, 20_000);
    scenario.network.min_delay_ms = 10;
    scenario.network.max_delay_ms = 10;
    scenario.network.to_agent_service_us = 1_000;
    let outcome = run(&scenario, Duration::from_secs(600)).unwrap();
    assert_exactly_once_in_order(&outcome, &scenario);
    let counters = outcome.client.sender.counters();
    assert!(
        counters.retransmissions < 1_000,
        "{} retransmissions for 20,000 messages ({counters:?})",
        counters.retransmissions
    );
    // The bottleneck's own pace is 20 s.
    assert!(
        outcome.finished_after < Duration::from_secs(30),
        "{:?}",
        outcome.finished_after
    );
}

fn steady(window: usize, messages: usize) -> Scenario {
    Scenario {
        seed: 7,
        network: Network {
            loss_percent: 0,
            duplicate_percent: 0,
            min_delay_ms: 50,
            max_delay_ms: 50,
            to_agent_service_us: 0,
        },
        window,
        client_messages: messages,
        agent_messages: 0,
        outage: None,
    }
}

#[test]
fn a_window_is_not_limited_by_one_round_trip_per_message() {
    // 100 ms round trips, 160 messages.
    let one = run(&steady(1, 160), Duration::from_secs(60)).unwrap();
    let wide = run(&steady(16, 160), Duration::from_secs(60)).unwrap();
    assert_eq!(one.finished_after, Duration::from_millis(16_000));
    assert_eq!(wide.finished_after, Duration::from_millis(1_000));
    assert_eq!(wide.agent.delivered.len(), 160);
}

#[test]
fn heavy_loss_and_an_outage_still_converge_through_re_acks() {
    let scenario = Scenario {
        seed: 42,
        network: Network {
            loss_percent: 40,
            duplicate_percent: 10,
            min_delay_ms: 5,
            max_delay_ms: 400,
            to_agent_service_us: 0,
        },
        window: 8,
        client_messages: 50,
        agent_messages: 50,
        outage: Some(Outage {
            start: Duration::from_secs(2),
            length: Duration::from_secs(30),
        }),
    };
    let outcome = run(&scenario, Duration::from_secs(300)).unwrap();
    assert_exactly_once_in_order(&outcome, &scenario);
    let re_acks =
        outcome.client.receiver.counters().re_acks + outcome.agent.receiver.counters().re_acks;
    assert!(re_acks > 0, "lost acks must have caused duplicates");
}
