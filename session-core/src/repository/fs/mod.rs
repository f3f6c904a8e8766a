//! A workspace in one JSON file; see [`FsWorkspace`].
//!
//! - `builder`: [`FsWorkspaceBuilder`], where the file is
//!   ([`default_path`]) and the migration steps.
//! - `format`: the file on disk: its schema ([`WORKSPACE_SCHEMA_VERSION`],
//!   [`Migration`]), parsing with line and column errors, serialization.
//! - `journal`: the journal file of changes since the file was written
//!   whole (format, torn tails, generations).
//! - `refresh`: reading the file and its journal into memory.
//! - `persist`: appending a change to the journal, or writing the file
//!   whole and compacting.
//! - `store`: [`FsWorkspace`]: the cross-process lock, the atomic replace,
//!   the backup, and the [`WorkspaceRepository`](super::WorkspaceRepository)
//!   implementation.
//! - `session_lock`: the per-session lock files behind
//!   [`WorkspaceRepository::lock_session`](super::WorkspaceRepository::lock_session).

mod builder;
mod format;
mod journal;
mod layout;
mod persist;
mod refresh;
mod session_lock;
mod store;

pub use builder::{FsWorkspaceBuilder, default_path};
pub use format::{Migration, WORKSPACE_SCHEMA_VERSION};
pub use store::FsWorkspace;
