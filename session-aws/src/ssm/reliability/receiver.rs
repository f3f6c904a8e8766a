//! The receiving half: acknowledgements, in-order delivery, the bounded
//! reorder buffer and re-acknowledged duplicates.

use std::collections::BTreeMap;

use super::{Side, is_sequenced};
use crate::ssm::message::{ClientMessage, MessageType};
use crate::ssm::payload::Acknowledgement;

/// The settings of a [`Receiver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// How many early messages the reorder buffer keeps. Default 10,000,
    /// the reference capacity (`ssm.md` §2.6). Only sequence numbers below
    /// `expected + reorder_capacity` are stored.
    pub reorder_capacity: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            reorder_capacity: 10_000,
        }
    }
}

/// What happened to one incoming stream message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// It was the expected one: acknowledged and delivered, followed by any
    /// buffered messages it made contiguous.
    InOrder,
    /// It arrived early: acknowledged and kept in the reorder buffer.
    Buffered,
    /// It was already received (behind `expected`, or already buffered):
    /// acknowledged again, not delivered again.
    Duplicate,
    /// It arrived early but beyond the reorder buffer's reach
    /// (`expected + reorder_capacity` or further): dropped **without** an
    /// acknowledgement, so that the peer retransmits it later. The
    /// reference implementations ack before dropping, which loses the data.
    DroppedFull,
    /// A sequence number already received, carried by a *different*
    /// message (another MessageId): the peer restarted its counter (an
    /// agent that restarted). Neither
    /// acknowledged nor delivered; the session cannot go on without losing
    /// or mixing up data, so the caller ends it.
    Conflict,
}

/// How many recent sequence numbers keep their MessageId, so that a resend
/// (same MessageId) is told from a peer that restarted its counter (a new
/// MessageId under an old number). Older numbers cannot be checked, except
/// 0, whose MessageId is kept for good: a restarted peer starts there.
pub const HISTORY: usize = 16_384;

/// The outcome of [`Receiver::on_message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// What happened.
    pub disposition: Disposition,
    /// The acknowledgement to send, if any; build the message with
    /// [`Acknowledgement::to_message`] and a new random MessageId.
    pub ack: Option<Acknowledgement>,
    /// The messages to hand on, in sequence order; empty unless
    /// [`Disposition::InOrder`].
    pub deliver: Vec<ClientMessage>,
}

/// The message given to [`Receiver::on_message`] is not a stream message
/// this side receives (an ack, `channel_closed`, a publication message, an
/// unknown type, or the stream type this side sends); it is handed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is not a sequenced stream message for this side", .0.message_type)]
pub struct NotSequenced(pub ClientMessage);

/// Counters for tests and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverCounters {
    /// Acknowledgements produced, re-acks included.
    pub acks_sent: u64,
    /// Acknowledgements of duplicates.
    pub re_acks: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages stored in the reorder buffer.
    pub buffered: u64,
    /// Messages dropped because they were beyond the reorder buffer.
    pub dropped_full: u64,
    /// Messages refused as [`Disposition::Conflict`].
    pub conflicts: u64,
}

/// The receiving half of one side of the data channel.
///
/// `expected` starts at 0 and is never reset; the reorder buffer is kept
/// across a reconnect too (`ssm.md` §2.11).
#[derive(Debug, Clone)]
pub struct Receiver {
    side: Side,
    config: ReceiverConfig,
    expected: i64,
    reorder: BTreeMap<i64, ClientMessage>,
    /// `(sequence number, MessageId)` of recent arrivals, at
    /// `seq % HISTORY`; allocated with the first message.
    history: Vec<(i64, u128)>,
    /// The MessageId of sequence number 0.
    first: Option<u128>,
    counters: ReceiverCounters,
}

impl Receiver {
    /// A receiver for `side`, expecting sequence number 0 first.
    pub fn new(side: Side, config: ReceiverConfig) -> Self {
        Self {
            side,
            config,
            expected: 0,
            reorder: BTreeMap::new(),
            history: Vec::new(),
            first: None,
            counters: ReceiverCounters::default(),
        }
    }

    /// Handles one decoded incoming message of the stream type this side
    /// receives (see [`Side::receives`]):
    /// - `seq == expected`: ack, deliver it, then every buffered message
    ///   that follows without a gap;
    /// - `expected < seq < expected + capacity`: ack and buffer it;
    /// - `seq < expected`, or already buffered: ack again (so that a lost
    ///   ack does not make the peer resend until it gives up), deliver
    ///   nothing; but when it is another message under that number (a new
    ///   MessageId, as far as the last [`HISTORY`] numbers and number 0
    ///   tell), the peer restarted its counter: [`Disposition::Conflict`],
    ///   no ack;
    /// - further ahead: drop without an ack.
    pub fn on_message(&mut self, message: ClientMessage) -> Result<Received, NotSequenced> {
        if !is_sequenced(&message.message_type) || message.message_type != self.side.receives() {
            return Err(NotSequenced(message));
        }
        let seq = message.sequence_number;
        let id = message.message_id.as_u128();
        let ack = Acknowledgement::of(&message);
        if (seq < self.expected || self.reorder.contains_key(&seq)) && !self.is_resend(seq, id) {
            self.counters.conflicts += 1;
            return Ok(Received {
                disposition: Disposition::Conflict,
                ack: None,
                deliver: Vec::new(),
            });
        }
        let (disposition, deliver) = if seq == self.expected {
            self.remember(seq, id);
            let mut deliver = vec![message];
            self.advance();
            while let Some(next) = self.reorder.remove(&self.expected) {
                self.remember(next.sequence_number, next.message_id.as_u128());
                deliver.push(next);
                self.advance();
            }
            (Disposition::InOrder, deliver)
        } else if seq < self.expected || self.reorder.contains_key(&seq) {
            self.counters.re_acks += 1;
            (Disposition::Duplicate, Vec::new())
        } else if self.within_reach(seq) && self.reorder.len() < self.config.reorder_capacity {
            self.reorder.insert(seq, message);
            self.counters.buffered += 1;
            (Disposition::Buffered, Vec::new())
        } else {
            self.counters.dropped_full += 1;
            return Ok(Received {
                disposition: Disposition::DroppedFull,
                ack: None,
                deliver: Vec::new(),
            });
        };
        self.counters.acks_sent += 1;
        self.counters.delivered += deliver.len() as u64;
        Ok(Received {
            disposition,
            ack: Some(ack),
            deliver,
        })
    }

    /// Whether `id` can be the MessageId that arrived under `seq` before:
    /// the buffered message's, or a delivered one's. Only delivered
    /// messages go into the history, which so holds the last [`HISTORY`]
    /// numbers below `expected` (a reorder buffer reaching further ahead
    /// would otherwise overwrite them). A number older than that cannot be
    /// checked and is taken for a resend (a busy peer with a lost ack may
    /// resend after its 1 s RTO, tens of thousands of messages later);
    /// sequence number 0's MessageId is kept for good, since a restarted
    /// peer starts there.
    fn is_resend(&self, seq: i64, id: u128) -> bool {
        if let Some(buffered) = self.reorder.get(&seq) {
            return buffered.message_id.as_u128() == id;
        }
        if seq < 0 {
            return false;
        }
        if seq == 0 {
            return self.first == Some(id);
        }
        let Ok(slot) = usize::try_from(seq.rem_euclid(HISTORY as i64)) else {
            return false;
        };
        match self.history.get(slot) {
            Some(&(recorded, known)) if recorded == seq => known == id,
            _ => true,
        }
    }

    fn remember(&mut self, seq: i64, id: u128) {
        if seq == 0 {
            self.first = Some(id);
        }
        if self.history.is_empty() {
            self.history = vec![(-1, 0); HISTORY];
        }
        if let Ok(slot) = usize::try_from(seq.rem_euclid(HISTORY as i64))
            && let Some(entry) = self.history.get_mut(slot)
        {
            *entry = (seq, id);
        }
    }

    fn advance(&mut self) {
        // At i64::MAX the peer's counter is exhausted as well; stay put.
        self.expected = self.expected.saturating_add(1);
    }

    /// Whether `seq` (> expected) lies within the reorder buffer's reach.
    fn within_reach(&self, seq: i64) -> bool {
        let ahead = seq.abs_diff(self.expected);
        usize::try_from(ahead).is_ok_and(|ahead| ahead < self.config.reorder_capacity)
    }

    /// The sequence number expected next.
    pub fn expected(&self) -> i64 {
        self.expected
    }

    /// How many messages wait in the reorder buffer.
    pub fn buffered(&self) -> usize {
        self.reorder.len()
    }

    /// The stream type this receiver accepts.
    pub fn accepts(&self) -> MessageType {
        self.side.receives()
    }

    /// The counters.
    pub fn counters(&self) -> &ReceiverCounters {
        &self.counters
    }
}
