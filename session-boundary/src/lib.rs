//! HashiCorp Boundary sessions for `session-sdk`.
//!
//! **Status: placeholder.** This crate compiles but does not implement the
//! `boundary` session type yet; its issue fills it. It will contain the
//! controller REST client (authorize-session, list, read, cancel), the
//! authorization-token decoder and the local proxy of `boundary connect`,
//! implementing [`session_core::SessionAction`] with a live connection that
//! `stop` closes.
