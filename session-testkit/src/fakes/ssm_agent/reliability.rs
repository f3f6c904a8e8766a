//! Sequencing, acks and retransmission of one session (`ssm.md` §2.5–§2.6),
//! as plain state: the session task does the I/O.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::codec::ClientMessage;

/// Reorder and outgoing buffer capacity.
pub(super) const BUFFER_CAPACITY: usize = 10_000;
/// The resend scheduler's tick.
pub(super) const RESEND_TICK: Duration = Duration::from_millis(100);
const INITIAL_RTT: Duration = Duration::from_millis(100);
const INITIAL_RTO: Duration = Duration::from_millis(200);
const MAX_RTO: Duration = Duration::from_secs(1);
const MIN_VARIANCE_TERM: Duration = Duration::from_millis(10);

/// A sent stream message, kept until acked.
pub(super) struct Outgoing {
    pub(super) bytes: Vec<u8>,
    pub(super) last_sent: Instant,
}

/// Where an incoming stream message goes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Arrival {
    /// In order: ack it; deliver it and then [`Reliability::drain`].
    InOrder,
    /// Ahead: ack it; stored for later.
    Ahead,
    /// Ahead, but the reorder buffer is full: dropped, not acked.
    Full,
    /// Already processed (or already stored).
    Duplicate,
}

pub(super) struct Reliability {
    pub(super) next_out: i64,
    pub(super) out: BTreeMap<i64, Outgoing>,
    pub(super) expected: i64,
    reorder: BTreeMap<i64, ClientMessage>,
    /// MessageId of every client sequence number seen.
    seen: HashMap<i64, Uuid>,
    rtt: Duration,
    rttvar: Duration,
    pub(super) rto: Duration,
}

impl Reliability {
    pub(super) fn new() -> Self {
        Self {
            next_out: 0,
            out: BTreeMap::new(),
            expected: 0,
            reorder: BTreeMap::new(),
            seen: HashMap::new(),
            rtt: INITIAL_RTT,
            rttvar: Duration::ZERO,
            rto: INITIAL_RTO,
        }
    }

    /// Takes the next outgoing sequence number.
    pub(super) fn take_seq(&mut self) -> i64 {
        let seq = self.next_out;
        self.next_out += 1;
        seq
    }

    /// Buffers a sent message (the agent stops buffering when full).
    pub(super) fn keep(&mut self, seq: i64, bytes: Vec<u8>, now: Instant) {
        if self.out.len() < BUFFER_CAPACITY {
            self.out.insert(
                seq,
                Outgoing {
                    bytes,
                    last_sent: now,
                },
            );
        }
    }

    /// An ack for `seq`: true when it removed a buffered message (and fed
    /// an RTT sample).
    pub(super) fn acked(&mut self, seq: i64, now: Instant) -> bool {
        let Some(msg) = self.out.remove(&seq) else {
            return false;
        };
        let sample = now.saturating_duration_since(msg.last_sent);
        let diff = self.rtt.abs_diff(sample);
        self.rttvar = self.rttvar * 3 / 4 + diff / 4;
        self.rtt = self.rtt * 7 / 8 + sample / 8;
        self.rto = (self.rtt + (self.rttvar * 4).max(MIN_VARIANCE_TERM)).min(MAX_RTO);
        true
    }

    /// The oldest unacked message, when its RTO has run out (its send time
    /// is reset).
    pub(super) fn due(&mut self, now: Instant) -> Option<Vec<u8>> {
        let rto = self.rto;
        let (_, oldest) = self.out.iter_mut().next()?;
        if now.saturating_duration_since(oldest.last_sent) < rto {
            return None;
        }
        oldest.last_sent = now;
        Some(oldest.bytes.clone())
    }

    /// Every unacked message, oldest first (send times reset).
    pub(super) fn all_unacked(&mut self, now: Instant) -> Vec<Vec<u8>> {
        self.out
            .values_mut()
            .map(|m| {
                m.last_sent = now;
                m.bytes.clone()
            })
            .collect()
    }

    /// Whether `msg` reuses a sequence number seen under another MessageId.
    pub(super) fn conflicts(&mut self, msg: &ClientMessage) -> bool {
        match self.seen.get(&msg.sequence_number) {
            Some(id) => *id != msg.message_id,
            None => {
                self.seen.insert(msg.sequence_number, msg.message_id);
                false
            }
        }
    }

    /// Classifies an incoming stream message; an ahead one is stored.
    pub(super) fn arrive(&mut self, msg: &ClientMessage) -> Arrival {
        let seq = msg.sequence_number;
        if seq == self.expected {
            Arrival::InOrder
        } else if seq < self.expected || self.reorder.contains_key(&seq) {
            Arrival::Duplicate
        } else if self.reorder.len() >= BUFFER_CAPACITY {
            Arrival::Full
        } else {
            self.reorder.insert(seq, msg.clone());
            Arrival::Ahead
        }
    }

    /// After delivering the expected message: advances `expected` and
    /// returns the stored messages that are now in order.
    pub(super) fn drain(&mut self) -> Vec<ClientMessage> {
        self.expected += 1;
        let mut ready = Vec::new();
        while let Some(m) = self.reorder.remove(&self.expected) {
            ready.push(m);
            self.expected += 1;
        }
        ready
    }
}
