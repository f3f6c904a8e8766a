//! Test doubles: in-process stand-ins for the parts a test does not want to
//! be real.
//!
//! - [`TokenProvider`]: a scripted [`SessionAction`](session_core::SessionAction)
//!   that issues tokens, for manager, scheduler and harness tests.
//! - [`LoopbackTunnel`]: a live [`SessionAction`](session_core::SessionAction)
//!   whose tunnel is a loopback TCP listener forwarding to an echo server,
//!   and that can be told (or scripted by its session config, see
//!   [`loopback_tunnel`]) to drop its connection.
//! - `MemoryKeychain` (feature `keyring`): a `keyring` credential store in
//!   process memory, for `KeyringSecretStore` without an OS keychain.

pub mod loopback_tunnel;
#[cfg(feature = "keyring")]
mod memory_keychain;
mod token_provider;

pub use loopback_tunnel::{LiveCalls, LoopbackTunnel};
#[cfg(feature = "keyring")]
pub use memory_keychain::MemoryKeychain;
pub use token_provider::{CallCounts, TOKEN_SECRET, TokenConfig, TokenProvider};
