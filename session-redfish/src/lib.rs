//! Redfish login sessions for `session-sdk`.
//!
//! **Status: placeholder.** This crate compiles but does not implement the
//! `redfish` session type yet; its issue fills it. It will contain a
//! SessionService client (X-Auth-Token login, list, get, delete, re-login on
//! 401) implementing [`session_core::SessionAction`], and an embeddable
//! Redfish SessionService server for BMC, aggregator and test-bed builders.
