//! Running a store's blocking file or keychain I/O on tokio's blocking
//! pool, written once for the stores that do it.

use std::sync::Arc;

use crate::{Error, Result};

/// Runs `f(&inner)` on the blocking pool. A panic in `f` is resumed here (a
/// bug, not an I/O error); a task cancelled by a runtime shutting down is
/// reported by `cancelled`.
pub(crate) async fn run<I, T>(
    inner: &Arc<I>,
    f: impl FnOnce(&I) -> Result<T> + Send + 'static,
    cancelled: impl FnOnce() -> Error,
) -> Result<T>
where
    I: Send + Sync + 'static,
    T: Send + 'static,
{
    let inner = Arc::clone(inner);
    match tokio::task::spawn_blocking(move || f(&inner)).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(cancelled()),
    }
}
