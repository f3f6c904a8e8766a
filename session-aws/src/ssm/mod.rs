//! AWS Systems Manager Session Manager (feature `ssm`).
//!
//! **Status:** [`SsmProvider`], the `awsSsm` session type, runs shells and
//! port forwards (smux mode, and basic mode for agents too old for smux)
//! over the data channel; resume (ResumeSession) and KMS encryption are
//! still to come.
//! - [`provider`]: [`SsmProvider`], the live [`session_core::SessionAction`];
//! - [`stream`]: a shell's (or command's) bytes and terminal size over a
//!   [`DataChannel`];
//! - [`config`]: [`SsmConfig`], the settings of an `awsSsm` session, and
//!   [`SsmState`], what its start made available;
//! - [`control`]: StartSession, ResumeSession, TerminateSession and
//!   DescribeSessions through `aws-sdk-ssm` ([`SsmClientConfig`],
//!   [`SsmApi`]);
//! - [`channel`]: [`DataChannel`], the task that runs a data channel
//!   (handshake, acks, reordering, retransmission, publication control,
//!   `channel_closed`);
//! - [`port`]: port forwarding over a [`DataChannel`] from a local
//!   listener: [`port::run`] picks the mode from the handshake as the
//!   agent does; smux mode (any number of connections, NOP keepalive for
//!   agents up to 3.1.1511.0, a failed dial closes only its connection) or
//!   basic mode for agents of 3.0.196.0 and older (one connection at a
//!   time, the others queued or refused with a warning);
//! - [`transport`]: the websocket to the `StreamUrl` (rustls; `ws://` to
//!   loopback only), OpenDataChannel, one binary frame per message;
//! - [`message`]: the binary `ClientMessage` every WebSocket frame carries
//!   ([`ClientMessage::encode`] / [`ClientMessage::decode`]), stricter than
//!   the reference plugin on what it accepts;
//! - [`payload`]: acknowledgements, handshake, size, flag and
//!   `channel_closed` payloads, as serde types;
//! - [`reliability`]: the sans-IO reliability layer of the data channel
//!   ([`reliability::Sender`]: sequence numbers, window, per-message
//!   retransmission timers; [`reliability::Receiver`]: acks, in-order
//!   delivery, reorder buffer, re-acked duplicates);
//! - [`handshake`]: the HandshakeResponse and the version-driven decisions
//!   (port mode, smux keepalive, TerminateSession flag);
//! - [`smux`]: smux v1 frames for multiplexed port forwarding, with an
//!   incremental decoder and the client's stream id allocator.
//!
//! These codecs sit below the provider level, so they have their own typed
//! errors ([`DecodeError`], [`EncodeError`], [`PayloadError`],
//! [`smux::SmuxError`]) rather than [`session_core::Error`].

pub mod channel;
pub mod config;
pub mod control;
pub mod handshake;
#[cfg(feature = "ssm-kms")]
pub mod kms;
pub mod message;
pub mod payload;
pub mod port;
pub mod provider;
pub mod reliability;
pub mod smux;
pub mod stream;
pub mod transport;

#[cfg(test)]
mod golden;

#[cfg(feature = "ssm-kms")]
pub use channel::ChannelKms;
pub use channel::{
    ChannelEnd, ChannelEvent, ChannelOptions, ChannelResume, ChannelSender, DataChannel,
    Established, Incoming, ResumeBudget, ResumeTickets,
};
pub use config::{SsmConfig, SsmState};
pub use control::{
    SessionListFilter, SessionListState, SessionResume, SsmApi, SsmClientConfig,
    SsmClientConfigBuilder, SsmSessionSummary, StreamTicket,
};
pub use message::{
    ClientMessage, DecodeError, EncodeError, MessageFlags, MessageType, PayloadType,
};
pub use payload::{
    Acknowledgement, ActionStatus, ActionType, ChannelClosed, EncryptionChallenge, FlagValue,
    HandshakeComplete, HandshakeRequest, HandshakeResponse, KmsEncryptionRequest, PayloadError,
    PortProperties, ProcessedClientAction, RequestedClientAction, SessionTypeRequest, Size,
    to_json,
};
pub use provider::SsmProvider;
