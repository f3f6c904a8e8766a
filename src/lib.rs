//! `session-sdk`: placeholder facade (filled below).
pub use session_core as core;
