//! Test doubles: in-process stand-ins for the parts a test does not want to
//! be real.
//!
//! - [`TokenProvider`]: a scripted [`SessionAction`](session_core::SessionAction)
//!   that issues tokens, for manager, scheduler and harness tests.
//! - `MemoryKeychain` (feature `keyring`): a `keyring` credential store in
//!   process memory, for `KeyringSecretStore` without an OS keychain.

#[cfg(feature = "keyring")]
mod memory_keychain;
mod token_provider;

#[cfg(feature = "keyring")]
pub use memory_keychain::MemoryKeychain;
pub use token_provider::{CallCounts, TOKEN_SECRET, TokenConfig, TokenProvider};
