//! Conformance suites: what every implementation of a `session-core` trait
//! must do, written once and run by each implementation's own tests.
//!
//! - [`action_conformance`]: every [`SessionAction`](session_core::SessionAction),
//!   with an [`ActionFixture`] per provider; [`live_conformance`] for the
//!   manager's handling of live providers, with a [`LiveFixture`].
//! - [`repository_conformance`], for every repository:
//!   [`WorkspaceRepository`](session_core::WorkspaceRepository).
//! - [`secret_store_conformance`]: every [`SecretStore`](session_core::SecretStore);
//!   its checks are public one by one in [`secret_store`].
//!
//! Call the suites from `tests/`, not from `#[cfg(test)]` modules of the crate
//! under test, so that only one copy of `session-core` is compiled.

pub mod action;
pub mod repository;
pub mod secret_store;

pub use action::{
    ActionFixture, CredentialProbe, DropConnection, LiveFixture, action_conformance,
    live_conformance,
};
pub use repository::repository_conformance;
pub use secret_store::secret_store_conformance;

/// For seeded-defect tests, which show a suite catches a broken
/// implementation: runs `suite` on its own task and returns the message it
/// panicked with.
///
/// # Panics
///
/// When the suite passed: `what` names the implementation it should have
/// failed (e.g. `a store with KeepsFirstValue`).
pub async fn failure_of(
    suite: impl std::future::Future<Output = ()> + Send + 'static,
    what: &str,
) -> String {
    let outcome = tokio::spawn(suite).await;
    let panic = outcome.expect_err(&format!("the suite passed {what}"));
    let payload = panic.into_panic();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}
