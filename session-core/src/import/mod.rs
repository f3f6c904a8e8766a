//! Reading what other session tools keep, to import it. Read-only: nothing
//! here writes another tool's files.
//!
//! - [`leapp`]: the Leapp desktop app's encrypted workspace.

pub mod leapp;
