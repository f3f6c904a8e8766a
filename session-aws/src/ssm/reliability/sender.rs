//! The sending half: sequence numbers, the window of unacknowledged
//! messages, per-message retransmission timers and the give-up deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::rtt::{INITIAL_RTO, MAX_RTO, RttEstimator};
use super::{Side, after, elapsed, epoch_millis};
use crate::ssm::message::{ClientMessage, EncodeError, MessageFlags, PayloadType, SCHEMA_VERSION};
use crate::ssm::payload::Acknowledgement;

/// The settings of a [`Sender`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    /// How many stream messages may be unacknowledged at once. Default
    /// 4,096.
    ///
    /// Counted in messages, not bytes, because both peers bound their
    /// buffers in messages (10,000 for the reorder and outgoing buffers,
    /// `ssm.md` §2.6): 4,096 stays well below, so a whole window arriving
    /// out of order never overflows the agent's reorder buffer (the plugin
    /// itself has no window and lets up to 10,000 fly). At the reference
    /// chunk size of 1,024 bytes it keeps 4 MiB in flight, about 40 MiB/s
    /// at 100 ms RTT, against the plugin's measured 0.5–0.8 MB/s. Measured
    /// through a 22 ms round trip (`benches/ssm_port_forward.rs`): 256
    /// messages held a port forward to 8.2 MiB/s, the window's own bound;
    /// 4,096 gave 76 MiB/s, as fast as with no delay. It also bounds the
    /// burst resent after a reconnect. Values below 1 are treated as 1.
    ///
    /// It is the most in flight: the congestion window (from
    /// [`Sender::congestion_window`], 64 at first, halved on a
    /// retransmission time-out) may allow fewer.
    pub window: usize,
    /// The RTO before the first RTT sample. Default 200 ms.
    pub initial_rto: Duration,
    /// The floor of the RTO of a first transmission. Default 200 ms (the
    /// reference's initial RTO, and TCP's usual floor).
    ///
    /// Not in the reference, which lets the RTO fall to SRTT + 10 ms: on a
    /// fast link whose estimate was learnt while the window was nearly
    /// empty, a full window then queues longer than that at the agent and
    /// is resent for nothing (measured: 0.3–10 % of messages sent twice
    /// with no loss at all, `benches/ssm_port_forward.rs`).
    pub min_rto: Duration,
    /// The cap of the RTO and of its exponential backoff. Default 1 s.
    pub max_rto: Duration,
    /// How long the oldest unacknowledged message may stay unacknowledged
    /// (time while publication is paused excluded) before the sender gives
    /// up ([`GaveUp`]); the session should then be terminated. Default
    /// 5 minutes, about the plugin's 3,000 resends at 100 ms.
    pub give_up_after: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            window: 4096,
            initial_rto: INITIAL_RTO,
            min_rto: INITIAL_RTO,
            max_rto: MAX_RTO,
            give_up_after: Duration::from_secs(5 * 60),
        }
    }
}

/// The congestion window a sender starts with, in messages (slow start
/// doubles it every round trip up to [`SenderConfig::window`]).
pub(crate) const INITIAL_CWND: usize = 64;

/// The congestion window after a retransmission time-out, in messages.
pub(crate) const MIN_CWND: usize = 16;

/// The sender stopped: one message stayed unacknowledged past
/// [`SenderConfig::give_up_after`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "message {sequence_number} stayed unacknowledged for {unacked_for:?} \
     ({transmissions} transmissions); giving up"
)]
pub struct GaveUp {
    /// The sequence number of the oldest unacknowledged message.
    pub sequence_number: i64,
    /// How long it had been unacknowledged, paused time excluded.
    pub unacked_for: Duration,
    /// How many times it was sent, the first time included.
    pub transmissions: u32,
}

/// Why [`Sender::send`] did not send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The window is full: wait for an acknowledgement.
    #[error("the window of {window} unacknowledged messages is full")]
    WindowFull {
        /// The window size.
        window: usize,
    },
    /// Publication is paused (`pause_publication`): wait for
    /// `start_publication`.
    #[error("publication is paused")]
    Paused,
    /// The sender already gave up.
    #[error(transparent)]
    GaveUp(GaveUp),
    /// The sequence counter reached `i64::MAX`.
    #[error("the sequence numbers are exhausted")]
    SequenceExhausted,
    /// The message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// What an acknowledgement did, from [`Sender::on_ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// It acknowledged an unacknowledged message, which is now forgotten.
    Acked {
        /// The acknowledged sequence number.
        sequence_number: i64,
        /// The RTT sample taken, `None` if the message had been
        /// retransmitted or was in flight across a pause (Karn's rule).
        rtt_sample: Option<Duration>,
    },
    /// No unacknowledged message has that sequence number (a duplicate or
    /// late ack); ignored.
    Unknown,
}

/// Counters for tests and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderCounters {
    /// Stream messages sent for the first time.
    pub sent: u64,
    /// Retransmissions, by timer or by [`Sender::resend_all`].
    pub retransmissions: u64,
    /// Acknowledgements that removed a message.
    pub acks_received: u64,
    /// Acknowledgements of unknown sequence numbers (ignored).
    pub unknown_acks: u64,
    /// RTT samples fed to the estimator.
    pub rtt_samples: u64,
    /// Acknowledgements that gave no sample under Karn's rule.
    pub karn_skipped: u64,
    /// Retransmission time-outs that shrank the congestion window.
    pub congestion_events: u64,
    /// Due retransmissions put off because the congestion window was full.
    pub retransmissions_deferred: u64,
}

/// A view of one unacknowledged message, from [`Sender::unacked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unacked<'a> {
    /// Its sequence number.
    pub sequence_number: i64,
    /// Its MessageId.
    pub message_id: Uuid,
    /// Its exact wire bytes.
    pub bytes: &'a [u8],
    /// How many times it was sent.
    pub transmissions: u32,
}

#[derive(Debug, Clone)]
struct InFlight {
    message_id: Uuid,
    bytes: Vec<u8>,
    /// When it was first sent, shifted forward by paused time: the start of
    /// its give-up clock.
    first_sent: OffsetDateTime,
    /// When it was last actually written.
    last_sent: OffsetDateTime,
    transmissions: u32,
    /// The time-out of its current transmission.
    backoff: Duration,
    deadline: OffsetDateTime,
    /// False once retransmitted or in flight across a pause.
    rtt_eligible: bool,
}

/// The sending half of one side of the data channel.
///
/// Sequence numbers count from 0 and never reset, not even across a
/// reconnect. Each message's bytes are kept until acknowledged and
/// retransmitted unchanged (same MessageId, same sequence number).
#[derive(Debug, Clone)]
pub struct Sender {
    side: Side,
    config: SenderConfig,
    next_sequence: i64,
    in_flight: BTreeMap<i64, InFlight>,
    /// `(deadline, sequence)` of every message in flight, so the next
    /// deadline is found without a scan.
    deadlines: BTreeSet<(OffsetDateTime, i64)>,
    rtt: RttEstimator,
    paused_since: Option<OffsetDateTime>,
    gave_up: Option<GaveUp>,
    counters: SenderCounters,
    /// The congestion window: how many messages may be unacknowledged
    /// now, within `config.window`.
    cwnd: f64,
    /// Below it the window grows by one per ack (slow start), above it by
    /// one per window of acks.
    ssthresh: f64,
    /// Time-outs of messages numbered below it belong to the congestion
    /// event that set it, and do not shrink the window again.
    recovery_until: i64,
}

impl Sender {
    /// A sender for `side`, whose first message gets sequence number 0.
    pub fn new(side: Side, config: SenderConfig) -> Self {
        let rtt = RttEstimator::new(config.initial_rto, config.max_rto);
        Self {
            side,
            config,
            next_sequence: 0,
            in_flight: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            rtt,
            paused_since: None,
            gave_up: None,
            counters: SenderCounters::default(),
            cwnd: INITIAL_CWND as f64,
            ssthresh: f64::INFINITY,
            recovery_until: 0,
        }
    }

    /// How many messages may be unacknowledged now: the configured window,
    /// or less while the congestion window is smaller.
    fn window(&self) -> usize {
        // A float of at most a few thousand: the cast is exact.
        let cwnd = self.cwnd as usize;
        self.config.window.min(cwnd).max(1)
    }

    /// The congestion window, in messages (at most [`SenderConfig::window`]
    /// in effect).
    pub fn congestion_window(&self) -> usize {
        self.window()
    }

    /// Whether [`send`](Self::send) would accept a message now: the window
    /// has room, publication is not paused and the sender has not given up.
    pub fn can_send(&self) -> bool {
        self.paused_since.is_none()
            && self.gave_up.is_none()
            && self.in_flight.len() < self.window()
    }

    /// Builds, numbers and keeps the next stream message and returns the
    /// bytes to write. `message_id` must be a new random id (not nil).
    /// CreatedDate is taken from `now`. The agent side sets SYN on
    /// sequence number 0, as the agent does.
    pub fn send(
        &mut self,
        payload_type: PayloadType,
        payload: Vec<u8>,
        message_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, SendError> {
        if let Some(gave_up) = &self.gave_up {
            return Err(SendError::GaveUp(gave_up.clone()));
        }
        if self.paused_since.is_some() {
            return Err(SendError::Paused);
        }
        if self.in_flight.len() >= self.window() {
            return Err(SendError::WindowFull {
                window: self.window(),
            });
        }
        let sequence_number = self.next_sequence;
        let next = sequence_number
            .checked_add(1)
            .ok_or(SendError::SequenceExhausted)?;
        let flags = if self.side == Side::Agent && sequence_number == 0 {
            MessageFlags::SYN
        } else {
            MessageFlags::NONE
        };
        let message = ClientMessage {
            message_type: self.side.sends(),
            schema_version: SCHEMA_VERSION,
            created_date: epoch_millis(now),
            sequence_number,
            flags,
            message_id,
            payload_type,
            payload,
        };
        let bytes = message.encode()?;
        let backoff = self.first_rto();
        self.deadlines
            .insert((after(now, backoff), sequence_number));
        self.in_flight.insert(
            sequence_number,
            InFlight {
                message_id,
                bytes: bytes.clone(),
                first_sent: now,
                last_sent: now,
                transmissions: 1,
                backoff,
                deadline: after(now, backoff),
                rtt_eligible: true,
            },
        );
        self.next_sequence = next;
        self.counters.sent += 1;
        Ok(bytes)
    }

    /// Applies an acknowledgement received at `now`: the message with that
    /// sequence number is forgotten and, if it was sent only once and not
    /// across a pause, gives an RTT sample (Karn's rule). Acks are matched
    /// by sequence number only (`ssm.md` §2.5); unknown ones are ignored, so
    /// duplicates are harmless. An ack also ends a pause, as the agent
    /// does: the far side is evidently back.
    pub fn on_ack(&mut self, ack: &Acknowledgement, now: OffsetDateTime) -> AckOutcome {
        if self.paused_since.is_some() {
            self.resume(now);
        }
        let sequence_number = ack.acknowledged_message_sequence_number;
        let Some(message) = self.in_flight.remove(&sequence_number) else {
            self.counters.unknown_acks += 1;
            return AckOutcome::Unknown;
        };
        self.deadlines.remove(&(message.deadline, sequence_number));
        self.counters.acks_received += 1;
        self.grow_window();
        let rtt_sample = if message.rtt_eligible {
            let sample = elapsed(message.last_sent, now);
            self.rtt.sample(sample);
            self.counters.rtt_samples += 1;
            Some(sample)
        } else {
            self.counters.karn_skipped += 1;
            None
        };
        AckOutcome::Acked {
            sequence_number,
            rtt_sample,
        }
    }

    /// When the caller should next call [`poll_retransmit`](Self::poll_retransmit):
    /// the earliest retransmission deadline or the give-up deadline
    /// (computed in time linear in the number of unacknowledged messages,
    /// which the window bounds).
    /// `None` when nothing is unacknowledged, while paused, or after giving
    /// up.
    pub fn next_deadline(&self) -> Option<OffsetDateTime> {
        if self.paused_since.is_some() || self.gave_up.is_some() {
            return None;
        }
        let retransmit = self.deadlines.first()?.0;
        let give_up = self.give_up_deadline()?;
        Some(retransmit.min(give_up))
    }

    fn give_up_deadline(&self) -> Option<OffsetDateTime> {
        let oldest = self.in_flight.first_key_value()?.1.first_sent;
        Some(after(oldest, self.config.give_up_after))
    }

    /// The bytes to write again at `now`: every message whose deadline has
    /// passed, oldest first, identical to its first transmission. Each one's
    /// time-out doubles, up to [`SenderConfig::max_rto`]. Nothing while
    /// paused. `Err` once the oldest message has been unacknowledged for
    /// [`SenderConfig::give_up_after`]; from then on the sender refuses to
    /// send and keeps returning that error.
    pub fn poll_retransmit(&mut self, now: OffsetDateTime) -> Result<Vec<Vec<u8>>, GaveUp> {
        if let Some(gave_up) = &self.gave_up {
            return Err(gave_up.clone());
        }
        if self.paused_since.is_some() {
            return Ok(Vec::new());
        }
        let oldest = self.in_flight.first_key_value();
        if let Some((sequence_number, oldest)) = oldest
            && after(oldest.first_sent, self.config.give_up_after) <= now
        {
            let gave_up = GaveUp {
                sequence_number: *sequence_number,
                unacked_for: elapsed(oldest.first_sent, now),
                transmissions: oldest.transmissions,
            };
            self.gave_up = Some(gave_up.clone());
            return Err(gave_up);
        }
        let max_rto = self.config.max_rto;
        let mut out = Vec::new();
        let mut due: Vec<i64> = self
            .deadlines
            .iter()
            .take_while(|(d, _)| *d <= now)
            .map(|(_, s)| *s)
            .collect();
        due.sort_unstable();
        if let Some(&oldest) = due.first() {
            self.shrink_window(oldest);
        }
        let budget = self.window();
        for (n, seq) in due.into_iter().enumerate() {
            let Some(message) = self.in_flight.get_mut(&seq) else {
                continue;
            };
            self.deadlines.remove(&(message.deadline, seq));
            if n >= budget {
                // Put off, not resent: after a time-out the far side is
                // most likely slow rather than losing messages, and a
                // whole window resent at once only lengthens its queue.
                message.deadline = after(now, message.backoff);
                self.deadlines.insert((message.deadline, seq));
                self.counters.retransmissions_deferred += 1;
                continue;
            }
            message.transmissions = message.transmissions.saturating_add(1);
            message.rtt_eligible = false;
            message.backoff = message.backoff.saturating_mul(2).min(max_rto);
            message.last_sent = now;
            message.deadline = after(now, message.backoff);
            self.deadlines.insert((message.deadline, seq));
            out.push(message.bytes.clone());
        }
        self.counters.retransmissions += out.len() as u64;
        Ok(out)
    }

    /// `pause_publication`: the far side is away. Retransmission timers and
    /// the give-up clock stop; unacknowledged messages stay buffered;
    /// [`send`](Self::send) refuses new messages until
    /// [`resume`](Self::resume).
    pub fn pause(&mut self, now: OffsetDateTime) {
        if self.paused_since.is_none() {
            self.paused_since = Some(now);
            for message in self.in_flight.values_mut() {
                message.rtt_eligible = false;
            }
        }
    }

    /// `start_publication` (or any sign of life from the far side): the
    /// timers continue where they stopped, shifted by the time spent
    /// paused.
    pub fn resume(&mut self, now: OffsetDateTime) {
        if let Some(since) = self.paused_since.take() {
            let paused_for = elapsed(since, now);
            for message in self.in_flight.values_mut() {
                message.first_sent = after(message.first_sent, paused_for);
                message.deadline = after(message.deadline, paused_for);
            }
            self.rebuild_deadlines();
        }
    }

    /// Whether publication is paused.
    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// After a reconnect (`ssm.md` §2.11): the bytes of every
    /// unacknowledged message, oldest first, to write on the new socket at
    /// once rather than waiting for their timers. They count as
    /// retransmissions (no RTT sample), and their timers restart from `now`
    /// without further backoff. Nothing after giving up, and nothing while
    /// paused (the timers resend them after [`resume`](Self::resume)).
    pub fn resend_all(&mut self, now: OffsetDateTime) -> Vec<Vec<u8>> {
        if self.gave_up.is_some() || self.paused_since.is_some() {
            return Vec::new();
        }
        let out: Vec<Vec<u8>> = self
            .in_flight
            .values_mut()
            .map(|message| {
                message.transmissions = message.transmissions.saturating_add(1);
                message.rtt_eligible = false;
                message.last_sent = now;
                message.deadline = after(now, message.backoff);
                message.bytes.clone()
            })
            .collect();
        self.rebuild_deadlines();
        self.counters.retransmissions += out.len() as u64;
        out
    }

    /// An ack: the congestion window grows by one message per ack while
    /// below the threshold (slow start), else by one per window of acks.
    fn grow_window(&mut self) {
        let limit = self.config.window.max(1) as f64;
        if self.cwnd < self.ssthresh {
            self.cwnd += 1.0;
        } else {
            self.cwnd += 1.0 / self.cwnd;
        }
        self.cwnd = self.cwnd.min(limit);
    }

    /// A retransmission time-out of message `oldest`: unless it belongs to
    /// the congestion event already being recovered from, the threshold
    /// becomes half of what was in flight and the window [`MIN_CWND`], as
    /// TCP does (RFC 5681). Without it, a peer slower than the window
    /// (the fake agent in a debug build, or a slow path through the
    /// service) got every message of a full window two or three times.
    fn shrink_window(&mut self, oldest: i64) {
        if oldest < self.recovery_until {
            return;
        }
        let in_flight = self.in_flight.len() as f64;
        let floor = MIN_CWND as f64;
        self.ssthresh = (in_flight / 2.0).max(floor);
        self.cwnd = floor;
        self.recovery_until = self.next_sequence;
        self.counters.congestion_events += 1;
    }

    /// The RTO of a first transmission: the estimate, within the floor
    /// and the cap.
    fn first_rto(&self) -> Duration {
        self.rtt
            .rto()
            .max(self.config.min_rto)
            .min(self.config.max_rto)
    }

    fn rebuild_deadlines(&mut self) {
        self.deadlines = self
            .in_flight
            .iter()
            .map(|(s, m)| (m.deadline, *s))
            .collect();
    }

    /// The unacknowledged messages, oldest first.
    pub fn unacked(&self) -> impl Iterator<Item = Unacked<'_>> + '_ {
        self.in_flight.iter().map(|(seq, m)| Unacked {
            sequence_number: *seq,
            message_id: m.message_id,
            bytes: &m.bytes,
            transmissions: m.transmissions,
        })
    }

    /// How many messages are unacknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The sequence number the next message will get.
    pub fn next_sequence_number(&self) -> i64 {
        self.next_sequence
    }

    /// The RTT estimator.
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// The counters.
    pub fn counters(&self) -> &SenderCounters {
        &self.counters
    }

    /// The settings.
    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    /// The give-up, once it happened.
    pub fn gave_up(&self) -> Option<&GaveUp> {
        self.gave_up.as_ref()
    }
}
