//! HashiCorp Boundary sessions for `session-sdk`.
//!
//! **Status: in progress (issue 16).** So far: [`token`], the decoder of
//! the authorization token (base58 + protobuf, with the session key
//! checked against the golden vectors of `boundary.md` §7). The `boundary`
//! session type is not implemented yet: the controller REST client
//! (authorize-session, list, read, cancel) and the local proxy of `boundary
//! connect`, implementing [`session_core::SessionAction`] with a live
//! connection that `stop` closes, are to come.

pub mod token;

pub use token::{AuthorizationData, SessionKey, TokenError};
