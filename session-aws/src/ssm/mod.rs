//! AWS Systems Manager Session Manager (feature `ssm`).
//!
//! **Status:** [`SsmProvider`], the `awsSsm` session type, runs shells and
//! port forwards (smux mode, and basic mode for agents too old for smux)
//! over the data channel.
//! - **KMS encryption** (feature `ssm-kms`, [`kms`]): when the account's
//!   Session Manager preferences ask for it, GenerateDataKey with the
//!   session's own credentials, region, endpoint override and time-outs,
//!   the exact encryption context, AES-256-GCM both ways; a failure (access
//!   denied, key disabled or missing, a context the agent cannot decrypt,
//!   KMS forbidden by the session's `forbidKms`) is a typed error naming
//!   the cause, never a handshake time-out. Without the feature the agent's
//!   request is answered Unsupported and the start fails saying so.
//! - **Resume in place**: a websocket lost to the network, closed by the
//!   service (close 1000), half-open (silent while messages wait for
//!   acks) or found dead after the process was stopped is resumed with
//!   ResumeSession and the same ClientId, keeping the counters and
//!   unacknowledged messages, under a deadline ([`ResumeBudget`], 10
//!   minutes by default, a session's `resumeDeadlineSeconds`) with
//!   jittered backoff; each try is a [`ChannelEvent`] (and a
//!   [`session_core::LiveEvent`] for the manager and `sessionctl
//!   connect`). Open port-forward connections and the remote shell carry
//!   on. Only `channel_closed`, TerminateSession, a session the service no
//!   longer knows, or the deadline end it. `rotate` of a held session asks
//!   for this resume now.
//! - **Not supported:** resuming a session's data channel from *another
//!   process* (one whose holder died): its sequence counters and
//!   unacknowledged messages died with the holder, and the agent drops
//!   numbers it has passed without a word, so no client can take the
//!   channel over. Such a session is reported `disconnected`, and
//!   `start`/`connect` terminates the remote session and starts a new one
//!   (`Started`, not `Resumed`).
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
//! - `kms` (feature `ssm-kms`): data keys and the payload cipher;
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
