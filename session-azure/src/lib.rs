//! Azure sessions for `session-sdk`.
//!
//! **Status: placeholder.** This crate compiles but does not implement the
//! `azure` session type yet; its issue fills it. It will contain native
//! OAuth 2.0 against Microsoft Entra ID (client credentials for apps, device
//! code and refresh tokens for users), an `azure_core` `TokenCredential`
//! adapter, and an optional Azure CLI file sink, behind
//! [`session_core::SessionAction`].
