//! Approving and denying a device code on the oidc-provider peer's pages
//! the way a user would in a browser ([`approve_device_code`],
//! [`deny_device_code`]).

use std::fmt;
use std::time::Duration;

use reqwest::{Client, Response, StatusCode, Url, header, redirect};

use super::html::{parse_form, snippet};

/// Where the "user" of [`approve_device_code`] / [`deny_device_code`] goes:
/// the `verification_uri_complete` of a device authorization answer (from a
/// `&str`), or its `verification_uri` and `user_code` (from a `(&str, &str)`
/// pair), the way a user types the code in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification<'a> {
    /// `verification_uri_complete`: the page already carries the user code.
    Complete(&'a str),
    /// `verification_uri` and `user_code`: the user enters the code.
    Code {
        /// `verification_uri`.
        uri: &'a str,
        /// `user_code`, e.g. `"WDJB-MJHT"`.
        user_code: &'a str,
    },
}

impl<'a> From<&'a str> for Verification<'a> {
    fn from(uri: &'a str) -> Self {
        Self::Complete(uri)
    }
}

impl<'a> From<(&'a str, &'a str)> for Verification<'a> {
    fn from((uri, user_code): (&'a str, &'a str)) -> Self {
        Self::Code { uri, user_code }
    }
}

/// Why [`approve_device_code`] or [`deny_device_code`] failed: the step, and
/// what went wrong there (with a short snippet of the page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalError {
    step: &'static str,
    detail: String,
}

impl ApprovalError {
    fn new(step: &'static str, detail: impl Into<String>) -> Self {
        Self {
            step,
            detail: detail.into(),
        }
    }

    /// The step that failed, e.g. `"2. POST the user code confirmation"`.
    pub fn step(&self) -> &str {
        self.step
    }

    /// What went wrong at that step.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for ApprovalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device code approval failed at step {}: {}",
            self.step, self.detail
        )
    }
}

impl std::error::Error for ApprovalError {}

const STEP_GET: &str = "1. GET the verification page";
const STEP_CONFIRM: &str = "2. POST the user code confirmation";
const STEP_LOGIN: &str = "3. sign in at the interaction";
const STEP_DONE: &str = "4. GET the final page";

/// Approves a device code as a user would in a browser, signing in as
/// `login` (any login and password are accepted):
///
/// 1. GET the verification page (with a cookie jar) and read its form;
/// 2. POST the form's `xsrf` and `user_code` with `confirm=yes`, which
///    redirects (303) to the sign-in interaction;
/// 3. GET the interaction's sign-in form and POST it with `prompt=login`,
///    `login` and a password, which redirects (303) back to the device
///    pages;
/// 4. GET that page and check that it says `Sign-in Success`.
///
/// The next poll of the token endpoint with the device code then returns
/// tokens whose `sub` is `login`. Relative redirects are resolved against
/// the page they came from.
///
/// # Errors
///
/// Which step failed and why, with a short snippet of the page (e.g. `the
/// code you entered is incorrect` for an unknown, used or expired code).
pub async fn approve_device_code<'a>(
    verification: impl Into<Verification<'a>>,
    login: &str,
) -> Result<(), ApprovalError> {
    let browser = Browser::new(STEP_GET)?;
    let response = browser.press(verification.into(), "confirm").await?;
    let interaction = expect_redirect(STEP_CONFIRM, response).await?;

    // The sign-in form of oidc-provider's development interactions.
    let page = browser.get(STEP_LOGIN, &interaction).await?;
    let (url, html) = expect_page(STEP_LOGIN, page).await?;
    let (action, mut fields) = parse_form(&html, &url)
        .ok_or_else(|| ApprovalError::new(STEP_LOGIN, format!("no form: {}", snippet(&html))))?;
    if !fields.iter().any(|(k, v)| k == "prompt" && v == "login") {
        return Err(ApprovalError::new(
            STEP_LOGIN,
            format!("not a sign-in form: {}", snippet(&html)),
        ));
    }
    fields.push(("login".to_owned(), login.to_owned()));
    fields.push(("password".to_owned(), "any-password".to_owned()));
    let response = browser.post(STEP_LOGIN, &action, &fields).await?;
    let done = expect_redirect(STEP_LOGIN, response).await?;

    let page = browser.get(STEP_DONE, &done).await?;
    let (_, html) = expect_page(STEP_DONE, page).await?;
    page_says(STEP_DONE, &html, "Sign-in Success", "\"Sign-in Success\"")
}

/// Denies a device code as a user would by pressing "abort": steps 1 and 2
/// of [`approve_device_code`], with `abort=yes` instead of `confirm=yes`,
/// then checks that the page says the sign-in was interrupted. The next poll
/// with the device code answers `access_denied`.
///
/// # Errors
///
/// Which step failed and why, with a short snippet of the page.
pub async fn deny_device_code<'a>(
    verification: impl Into<Verification<'a>>,
) -> Result<(), ApprovalError> {
    let browser = Browser::new(STEP_GET)?;
    let response = browser.press(verification.into(), "abort").await?;
    let (_, html) = expect_page(STEP_CONFIRM, response).await?;
    page_says(
        STEP_CONFIRM,
        &html,
        "interrupted",
        "the sign-in was interrupted",
    )
}

/// `Ok` when the page of `step` contains `expected`; else an error saying
/// it does not say `what`.
fn page_says(
    step: &'static str,
    html: &str,
    expected: &str,
    what: &str,
) -> Result<(), ApprovalError> {
    if html.contains(expected) {
        Ok(())
    } else {
        Err(ApprovalError::new(
            step,
            format!("the page does not say {what}: {}", snippet(html)),
        ))
    }
}

/// A cookie-keeping HTTP client that does not follow redirects by itself.
struct Browser {
    client: Client,
}

impl Browser {
    fn new(step: &'static str) -> Result<Self, ApprovalError> {
        Client::builder()
            .cookie_store(true)
            .redirect(redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map(|client| Self { client })
            .map_err(|e| ApprovalError::new(step, format!("cannot build an HTTP client: {e}")))
    }

    async fn get(&self, step: &'static str, url: &Url) -> Result<Response, ApprovalError> {
        self.client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| ApprovalError::new(step, format!("GET {url}: {e}")))
    }

    async fn post(
        &self,
        step: &'static str,
        url: &Url,
        fields: &[(String, String)],
    ) -> Result<Response, ApprovalError> {
        self.client
            .post(url.clone())
            .form(fields)
            .send()
            .await
            .map_err(|e| ApprovalError::new(step, format!("POST {url}: {e}")))
    }

    /// Steps 1 and 2: the user code form, posted with `button=yes`
    /// (`confirm` or `abort`).
    async fn press(
        &self,
        verification: Verification<'_>,
        button: &str,
    ) -> Result<Response, ApprovalError> {
        let (action, mut fields) = self.confirm_form(verification).await?;
        fields.retain(|(k, _)| k != "confirm" && k != "abort");
        fields.push((button.to_owned(), "yes".to_owned()));
        self.post(STEP_CONFIRM, &action, &fields).await
    }

    /// Step 1: the form to post the user code to, and its fields (`xsrf`,
    /// `user_code`).
    async fn confirm_form(
        &self,
        verification: Verification<'_>,
    ) -> Result<(Url, Vec<(String, String)>), ApprovalError> {
        let (uri, user_code) = match verification {
            Verification::Complete(uri) => (uri, None),
            Verification::Code { uri, user_code } => (uri, Some(user_code)),
        };
        let url = Url::parse(uri)
            .map_err(|e| ApprovalError::new(STEP_GET, format!("bad URL {uri:?}: {e}")))?;
        let response = self.get(STEP_GET, &url).await?;
        let (url, html) = expect_page(STEP_GET, response).await?;
        let (action, mut fields) = parse_form(&html, &url)
            .ok_or_else(|| ApprovalError::new(STEP_GET, format!("no form: {}", snippet(&html))))?;
        if !fields.iter().any(|(k, _)| k == "xsrf") {
            return Err(ApprovalError::new(
                STEP_GET,
                format!("the form has no xsrf field: {}", snippet(&html)),
            ));
        }
        match user_code {
            Some(code) => {
                fields.retain(|(k, _)| k != "user_code");
                fields.push(("user_code".to_owned(), code.to_owned()));
            }
            None if !fields.iter().any(|(k, _)| k == "user_code") => {
                return Err(ApprovalError::new(
                    STEP_GET,
                    format!("the form has no user_code field: {}", snippet(&html)),
                ));
            }
            None => {}
        }
        Ok((action, fields))
    }
}

/// A 200 HTML page: its URL and text.
async fn expect_page(
    step: &'static str,
    response: Response,
) -> Result<(Url, String), ApprovalError> {
    let status = response.status();
    let url = response.url().clone();
    let location = location(&response);
    let html = response
        .text()
        .await
        .map_err(|e| ApprovalError::new(step, format!("reading {url}: {e}")))?;
    if status == StatusCode::OK {
        Ok((url, html))
    } else {
        Err(ApprovalError::new(
            step,
            format!(
                "{url} answered {status}{} instead of a page: {}",
                location
                    .map(|l| format!(" (Location: {l})"))
                    .unwrap_or_default(),
                snippet(&html)
            ),
        ))
    }
}

/// The target of a 3xx answer, resolved against the request's URL.
async fn expect_redirect(step: &'static str, response: Response) -> Result<Url, ApprovalError> {
    let status = response.status();
    let url = response.url().clone();
    match location(&response) {
        Some(location) if status.is_redirection() => url.join(&location).map_err(|e| {
            ApprovalError::new(step, format!("bad Location {location:?} from {url}: {e}"))
        }),
        _ => {
            let html = response.text().await.unwrap_or_default();
            Err(ApprovalError::new(
                step,
                format!(
                    "{url} answered {status} instead of a redirect: {}",
                    snippet(&html)
                ),
            ))
        }
    }
}

fn location(response: &Response) -> Option<String> {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
