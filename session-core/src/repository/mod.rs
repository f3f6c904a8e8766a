//! Where sessions are stored: the [`WorkspaceRepository`] trait and its
//! in-memory and file implementations.

mod fs;
mod lock;
mod memory;
pub mod rules;
mod set;

pub use fs::{FsWorkspace, FsWorkspaceBuilder, Migration, WORKSPACE_SCHEMA_VERSION, default_path};
pub use lock::SessionLock;
pub(crate) use lock::TaskLocks;
pub use memory::InMemoryWorkspace;
pub(crate) use set::{IdMap, SessionSet};

use std::fmt;
use std::future::Future;

use tokio::sync::broadcast;

use crate::{Error, Result, Session, SessionId, SharedEvent};

/// A store of sessions with optimistic concurrency.
///
/// Every stored session carries a revision ([`Session::revision`]), set to 1
/// on insert and bumped on every update. [`update`](Self::update) and
/// [`delete`](Self::delete) take the revision the caller read, and fail with
/// [`Error::Conflict`] if someone else wrote in between, so two writers can
/// never silently overwrite each other. Implementations also refuse status
/// changes outside the table of [`SessionStatus`](crate::SessionStatus).
///
/// The list order is insertion order.
///
/// # Session locks
///
/// [`lock_session`](Self::lock_session) gives one caller at a time the use
/// of a session: the [`SessionManager`](crate::SessionManager) holds it
/// around every start, stop, rotate and remove, so that one operation on a
/// session makes one provider call even when several managers (several
/// processes) share the repository. It must exclude every other holder
/// that can reach the same stored sessions: other tasks, and other
/// processes for a repository they share. It must never outlive its holder
/// (a crashed process must not block the others forever).
///
/// *Migration note*: `lock_session` was added after 0.1's first shape. Its
/// default excludes nothing; the conformance suite of `session-testkit`
/// fails until a repository implements it.
#[async_trait::async_trait]
pub trait WorkspaceRepository: Send + Sync + fmt::Debug {
    /// All sessions, in insertion order.
    async fn list(&self) -> Result<Vec<Session>>;

    /// One session; [`Error::NotFound`] if there is none with this id.
    async fn get(&self, id: SessionId) -> Result<Session>;

    /// Adds a session and returns it with revision 1.
    ///
    /// Fails with [`Error::AlreadyExists`] if the id is taken, and with
    /// [`Error::InvalidInput`] if the session is not valid
    /// ([`Session::validate`]) or its parent does not exist.
    async fn insert(&self, session: Session) -> Result<Session>;

    /// Replaces the stored session with the same id and returns it with the
    /// next revision.
    ///
    /// Fails with [`Error::Conflict`] if `session.revision()` is not the
    /// stored revision, [`Error::InvalidTransition`] if the status change is
    /// not allowed, [`Error::InvalidInput`] if the type changes or the session
    /// is not valid, and [`Error::NotFound`] if it was deleted.
    async fn update(&self, session: Session) -> Result<Session>;

    /// Removes a session and returns what was stored. With
    /// `expected_revision`, fails with [`Error::Conflict`] if it differs.
    /// Fails with [`Error::InvalidInput`] while another session names it as
    /// parent.
    async fn delete(&self, id: SessionId, expected_revision: Option<u64>) -> Result<Session>;

    /// Waits until no other holder has the lock of session `id`, then
    /// returns it; it is released when the [`SessionLock`] is dropped. The
    /// session need not exist. See [Session locks](Self#session-locks).
    ///
    /// The default locks nothing, for repositories written before this
    /// method existed; every repository should override it.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the lock cannot be taken (e.g. a lock file
    /// cannot be created) or another holder keeps it too long.
    async fn lock_session(&self, id: SessionId) -> Result<SessionLock> {
        let _ = id;
        Ok(SessionLock::new(()))
    }

    /// Records that this process holds session `id`'s live connection
    /// until the returned guard is dropped (or the process dies), so that
    /// other processes sharing the repository can tell a connection that is
    /// up from one whose holder went away ([`is_held_elsewhere`](Self::is_held_elsewhere)).
    /// Called by the [`SessionManager`](crate::SessionManager) under the
    /// session's lock.
    ///
    /// The default returns `None`: the repository cannot tell other
    /// processes, which then report the session `disconnected`.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the mark cannot be made (a lock file cannot
    /// be created); [`Error::InvalidInput`] when another process holds it.
    async fn hold_live(&self, id: SessionId) -> Result<Option<SessionLock>> {
        let _ = id;
        Ok(None)
    }

    /// Whether another process holds session `id`'s live connection (see
    /// [`hold_live`](Self::hold_live)). The default is `false`: unknown.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the mark cannot be read.
    async fn is_held_elsewhere(&self, id: SessionId) -> Result<bool> {
        let _ = id;
        Ok(false)
    }

    /// Whether this repository carries events between the processes that
    /// use it ([`share_event`](Self::share_event),
    /// [`shared_events`](Self::shared_events)). The default is `false`.
    fn shares_events(&self) -> bool {
        false
    }

    /// Hands `event` to the other processes using this repository, which
    /// receive it from [`shared_events`](Self::shared_events). Delivery is
    /// at most once and best effort: a process not listening at the time
    /// never sees it. The [`SessionManager`](crate::SessionManager) calls
    /// this for what it publishes, in order. The default does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when it could not be handed over.
    async fn share_event(&self, event: SharedEvent) -> Result<()> {
        let _ = event;
        Ok(())
    }

    /// The events other processes share from now on (see
    /// [`share_event`](Self::share_event)); `None` when this repository
    /// carries none (the default). Events this process shared may come
    /// back too: [`SharedEvent::publisher`] tells them apart.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when listening cannot start.
    async fn shared_events(&self) -> Result<Option<broadcast::Receiver<SharedEvent>>> {
        Ok(None)
    }
}

/// The error when a live connection is held by another process (see
/// [`WorkspaceRepository::hold_live`]); `label` names the session.
pub(crate) fn held_elsewhere_error(label: &str) -> Error {
    Error::invalid_input(
        "session",
        format!("{label} is connected in another process; use it there, or stop it first"),
    )
}

/// Conveniences on every [`WorkspaceRepository`], including `dyn` ones.
pub trait WorkspaceRepositoryExt: WorkspaceRepository {
    /// Finds a session by id, or else by exact name.
    ///
    /// Fails with [`Error::NotFound`] if nothing matches and with
    /// [`Error::InvalidInput`] if several sessions share the name (use the id).
    fn find(&self, id_or_name: &str) -> impl Future<Output = Result<Session>> + Send {
        async move {
            if let Ok(id) = id_or_name.parse::<SessionId>() {
                return self.get(id).await;
            }
            let mut matches: Vec<Session> = self
                .list()
                .await?
                .into_iter()
                .filter(|s| s.session_name == id_or_name)
                .collect();
            match matches.len() {
                0 => Err(Error::not_found(format!("session '{id_or_name}'"))),
                1 => Ok(matches.remove(0)),
                several => Err(Error::invalid_input(
                    "session",
                    format!(
                        "{several} sessions are named '{id_or_name}' ({}); use the id",
                        list_ids(&matches)
                    ),
                )),
            }
        }
    }
}

/// The ids of an ambiguous name: all of them when few, else the first ones
/// and how many more.
fn list_ids(sessions: &[Session]) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<String> = sessions
        .iter()
        .take(SHOWN)
        .map(|s| s.session_id.to_string())
        .collect();
    match sessions.len().checked_sub(SHOWN) {
        Some(more) if more > 0 => format!("{} and {more} more", shown.join(", ")),
        _ => shown.join(", "),
    }
}

impl<T: WorkspaceRepository + ?Sized> WorkspaceRepositoryExt for T {}

macro_rules! forward_repository {
    ($($wrapper:ident),*) => {$(
        #[async_trait::async_trait]
        impl<T: WorkspaceRepository + ?Sized> WorkspaceRepository for $wrapper<T> {
            async fn list(&self) -> Result<Vec<Session>> {
                (**self).list().await
            }
            async fn get(&self, id: SessionId) -> Result<Session> {
                (**self).get(id).await
            }
            async fn insert(&self, session: Session) -> Result<Session> {
                (**self).insert(session).await
            }
            async fn update(&self, session: Session) -> Result<Session> {
                (**self).update(session).await
            }
            async fn delete(&self, id: SessionId, expected_revision: Option<u64>) -> Result<Session> {
                (**self).delete(id, expected_revision).await
            }
            async fn lock_session(&self, id: SessionId) -> Result<SessionLock> {
                (**self).lock_session(id).await
            }
            async fn hold_live(&self, id: SessionId) -> Result<Option<SessionLock>> {
                (**self).hold_live(id).await
            }
            async fn is_held_elsewhere(&self, id: SessionId) -> Result<bool> {
                (**self).is_held_elsewhere(id).await
            }
            fn shares_events(&self) -> bool {
                (**self).shares_events()
            }
            async fn share_event(&self, event: SharedEvent) -> Result<()> {
                (**self).share_event(event).await
            }
            async fn shared_events(&self) -> Result<Option<broadcast::Receiver<SharedEvent>>> {
                (**self).shared_events().await
            }
        }
    )*};
}

use std::sync::Arc;
forward_repository!(Box, Arc);

const _: () = {
    const fn assert_send_sync<T: ?Sized + Send + Sync>() {}
    assert_send_sync::<dyn WorkspaceRepository>();
};
