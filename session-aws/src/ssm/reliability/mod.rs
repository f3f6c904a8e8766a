//! The data channel's reliability layer (`ssm.md` §2.5, §2.6, §2.10,
//! §2.11), sans-IO: no sockets, no tasks, no clock of its own.
//!
//! - [`Sender`] numbers outgoing stream messages, keeps their exact bytes
//!   until they are acknowledged, limits how many fly unacknowledged
//!   ([`SenderConfig::window`]), and retransmits each one on its own timer
//!   (RTO from Jacobson's estimator, [`RttEstimator`], no samples from
//!   retransmitted messages, exponential backoff capped at 1 s) until a
//!   give-up deadline ([`GaveUp`]).
//! - [`Receiver`] acknowledges incoming stream messages, delivers them in
//!   order exactly once, keeps those that arrive early in a bounded reorder
//!   buffer, and re-acknowledges duplicates.
//!
//! # Time
//!
//! Every method that needs the time takes `now: OffsetDateTime`: the caller
//! reads it from its injected `session_core::Clock` and sleeps with
//! `Clock::sleep_until(deadline)` until [`Sender::next_deadline`], then calls
//! [`Sender::poll_retransmit`]. No fixed tick is involved. If the clock goes
//! backwards, elapsed times count as zero rather than negative.
//!
//! # Sides
//!
//! Both ends run the same machine; [`Side`] says which stream type a side
//! sends and which it receives, so that a fake agent and the network
//! simulation in the tests use the very code the client uses.

mod receiver;
mod rtt;
mod sender;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use receiver::{
    Disposition, HISTORY, NotSequenced, Received, Receiver, ReceiverConfig, ReceiverCounters,
};
pub use rtt::RttEstimator;
pub use sender::{AckOutcome, GaveUp, SendError, Sender, SenderConfig, SenderCounters, Unacked};

use std::time::Duration;

use time::OffsetDateTime;

use super::message::MessageType;

/// Which end of the data channel a [`Sender`] or [`Receiver`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client: sends `input_stream_data`, receives `output_stream_data`.
    Client,
    /// The agent (fakes and tests): sends `output_stream_data`, receives
    /// `input_stream_data`.
    Agent,
}

impl Side {
    /// The stream type this side sends.
    pub fn sends(self) -> MessageType {
        match self {
            Self::Client => MessageType::InputStreamData,
            Self::Agent => MessageType::OutputStreamData,
        }
    }

    /// The stream type this side receives.
    pub fn receives(self) -> MessageType {
        match self {
            Self::Client => MessageType::OutputStreamData,
            Self::Agent => MessageType::InputStreamData,
        }
    }
}

/// Whether messages of this type carry a sequence number and are
/// acknowledged: only `input_stream_data` and `output_stream_data` are
/// (`ssm.md` §2.5). Acks, `channel_closed`, the publication messages and
/// unknown types are not.
pub fn is_sequenced(message_type: &MessageType) -> bool {
    matches!(
        message_type,
        MessageType::InputStreamData | MessageType::OutputStreamData
    )
}

/// `later - earlier`, or zero if the clock went backwards.
fn elapsed(earlier: OffsetDateTime, later: OffsetDateTime) -> Duration {
    Duration::try_from(later - earlier).unwrap_or(Duration::ZERO)
}

/// `at + delay`, saturating at the end of representable time.
fn after(at: OffsetDateTime, delay: Duration) -> OffsetDateTime {
    at.saturating_add(time::Duration::try_from(delay).unwrap_or(time::Duration::MAX))
}

/// CreatedDate for a message built at `now`: Unix epoch milliseconds, never
/// 0 (decoders refuse 0).
fn epoch_millis(now: OffsetDateTime) -> u64 {
    u64::try_from(now.unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(1)
        .max(1)
}
