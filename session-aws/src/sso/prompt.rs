//! Showing the device code to the user.

use std::fmt;

use session_core::{Error, Result};
use time::OffsetDateTime;

/// A device authorization waiting for the user: what to show.
///
/// The user code is short-lived and useless without the device code (which
/// is never shown), so it may be displayed; it is still never written to
/// stdout, which may be a `credential_process` pipe.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    /// The start URL being signed in to.
    pub start_url: String,
    /// The SSO region.
    pub region: String,
    /// The code the user confirms in the browser (`userCode`).
    pub user_code: String,
    /// The page where the code is entered (`verificationUri`).
    pub verification_uri: String,
    /// The page with the code filled in (`verificationUriComplete`), if the
    /// service gave one; open this one.
    pub verification_uri_complete: Option<String>,
    /// When the authorization expires unless approved.
    pub expires_at: OffsetDateTime,
}

impl DeviceAuthorization {
    /// The page to open: the complete URI when there is one.
    pub fn url(&self) -> &str {
        self.verification_uri_complete
            .as_deref()
            .unwrap_or(&self.verification_uri)
    }
}

/// Shows a device authorization to the user (terminal, GUI, browser
/// opener). Called at most once per device flow, after the first poll, and
/// never for a sign-in served from the cache or by a refresh.
#[async_trait::async_trait]
pub trait DeviceCodePrompter: Send + Sync + fmt::Debug {
    /// Shows `authorization`. Returning an error abandons the sign-in
    /// (e.g. no one is there to approve it).
    async fn prompt(&self, authorization: &DeviceAuthorization) -> Result<()>;

    /// The flow ended: `approved` is true when a token was obtained. The
    /// default does nothing; a GUI may close its dialog here.
    async fn finished(&self, authorization: &DeviceAuthorization, approved: bool) {
        let _ = (authorization, approved);
    }
}

/// Writes the code and URL to **stderr** (never stdout).
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrPrompter;

#[async_trait::async_trait]
impl DeviceCodePrompter for StderrPrompter {
    async fn prompt(&self, authorization: &DeviceAuthorization) -> Result<()> {
        eprintln!(
            "AWS IAM Identity Center sign-in for {start_url} ({region}):\n\
             open {url}\n\
             and confirm that the code is {code}. Waiting for approval…",
            start_url = authorization.start_url,
            region = authorization.region,
            url = authorization.url(),
            code = authorization.user_code,
        );
        Ok(())
    }

    async fn finished(&self, authorization: &DeviceAuthorization, approved: bool) {
        if approved {
            eprintln!("Signed in to {}.", authorization.start_url);
        }
    }
}

/// Refuses every interactive sign-in: for non-interactive callers (a
/// `credential_process`, a daemon) that must fail fast instead of waiting
/// for a browser approval no one sees. Cached and refreshable tokens still
/// work.
#[derive(Debug, Default, Clone, Copy)]
pub struct NonInteractivePrompter;

#[async_trait::async_trait]
impl DeviceCodePrompter for NonInteractivePrompter {
    async fn prompt(&self, authorization: &DeviceAuthorization) -> Result<()> {
        Err(Error::Unauthenticated {
            target: format!("SSO sign-in to {}", authorization.start_url),
            message: "the cached SSO token is missing or expired and cannot be refreshed; \
                      an interactive sign-in is needed (run the session's start from a terminal, \
                      or `aws sso login`)"
                .to_owned(),
        })
    }
}
