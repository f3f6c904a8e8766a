//! MFA on the wire: the IAM-user start (`GetSessionToken`) and the
//! chained-role start (`AssumeRole`) send the configured MFA serial and the
//! code the MFA prompt gave (`SerialNumber` / `TokenCode`), and a missing or
//! malformed code fails the start before any request is sent (issue 12).
//!
//! moto does not check MFA codes (moto 5.2 ignores `SerialNumber` and
//! `TokenCode`), so a start that succeeds proves nothing about them. What
//! was sent is read from moto's own request recorder
//! (`MOTO_ENABLE_RECORDING`): moto appends every request it receives, body
//! included, to a file before it handles it, so the recording is what went
//! over the wire to a real STS implementation, refused or not.
//!
//! The MFA codes here are made up, but they are handled like secrets: a
//! recorded call's `Debug` shows the length of `TokenCode`, never its value.

mod common;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use common::{client, context, pending, store_moto_key};
use session_aws::mfa::{ChainMfaPrompt, MfaPrompt, TerminalMfaPrompt};
use session_aws::{ChainedRoleConfig, ChainedRoleProvider, IamUserConfig, IamUserProvider};
use session_core::{
    Error, InMemorySecretStore, InMemoryWorkspace, Result, Secret, Session, SessionAction,
    SessionManager, SessionStatus, SessionType, WorkspaceRepository,
};
use session_testkit::peers::moto_recorder::{RecordedCall, RecordingMoto};

const USER_SERIAL: &str = "arn:aws:iam::123456789012:mfa/dev";
const ROLE_SERIAL: &str = "GAHT12345678";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/Deploy";

// ---------------------------------------------------------------------------
// moto with its request recorder
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// An MFA prompt that records who asked
// ---------------------------------------------------------------------------

/// Answers the given codes in turn, unchecked (as a faulty prompt or plugin
/// might), and records the serial and purpose of every request.
struct Prompter {
    answers: Mutex<VecDeque<&'static str>>,
    asked: Mutex<Vec<(String, String)>>,
}

impl Prompter {
    fn new(answers: &[&'static str]) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers.iter().copied().collect()),
            asked: Mutex::default(),
        })
    }

    /// (serial, purpose) of each request, in order.
    fn asked(&self) -> Vec<(String, String)> {
        self.asked.lock().unwrap().clone()
    }
}

// MfaPrompt needs Debug; the answers are codes, so they are not shown.
impl fmt::Debug for Prompter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompter")
            .field("asked", &self.asked())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl MfaPrompt for Prompter {
    async fn code(&self, serial: &str, purpose: &str) -> Result<Secret> {
        self.asked
            .lock()
            .unwrap()
            .push((serial.to_owned(), purpose.to_owned()));
        let answer = self.answers.lock().unwrap().pop_front();
        Ok(Secret::new(answer.expect("the test gave enough answers")))
    }
}

fn iam_user(name: &str, serial: Option<&str>) -> Session {
    let mut config = IamUserConfig::default();
    if let Some(serial) = serial {
        config = config.with_mfa_serial(serial);
    }
    Session::new(name, SessionType::AwsIamUser)
        .expect("session")
        .with_config(&config)
        .expect("config")
}

// ---------------------------------------------------------------------------
// IAM user: GetSessionToken
// ---------------------------------------------------------------------------

/// Authentication on (the start is signed with the key moto issued): an IAM
/// user session with `mfaSerial` asks the prompt once for that device and
/// sends its serial and the prompt's code with `GetSessionToken`. A session
/// without `mfaSerial` sends neither and does not ask.
#[tokio::test]
async fn iam_user_start_sends_the_serial_and_the_prompted_code() {
    let Some((recorder, key)) = RecordingMoto::with_user("dev") else {
        return;
    };
    let prompter = Prompter::new(&["482913"]);
    let provider = IamUserProvider::without_sink(client(&recorder.moto)).with_mfa(prompter.clone());
    let (ctx, _clock) = context();

    let session = iam_user("mfa-user", Some(USER_SERIAL));
    store_moto_key(ctx.secrets.as_ref(), &session, &key).await;
    let started = provider
        .start(&ctx, &pending(session))
        .await
        .expect("start with MFA");
    assert_eq!(started.status(), SessionStatus::Active);

    let asked = prompter.asked();
    assert_eq!(asked.len(), 1, "one code for one call: {asked:?}");
    assert_eq!(asked[0].0, USER_SERIAL);
    assert!(
        asked[0].1.contains("mfa-user"),
        "the prompt says which session: {asked:?}"
    );
    let calls = recorder.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].action(), "GetSessionToken", "{calls:?}");
    assert_eq!(calls[0].get("SerialNumber"), Some(USER_SERIAL), "{calls:?}");
    assert!(
        calls[0].sends_code("482913"),
        "the prompt's code: {calls:?}"
    );

    // The control: without mfaSerial the same provider sends no MFA fields
    // (so the recording above is not something every call carries).
    recorder.forget();
    let plain = iam_user("plain-user", None);
    store_moto_key(ctx.secrets.as_ref(), &plain, &key).await;
    provider
        .start(&ctx, &pending(plain))
        .await
        .expect("start without MFA");
    let calls = recorder.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].action(), "GetSessionToken");
    assert_eq!(calls[0].get("SerialNumber"), None, "{calls:?}");
    assert_eq!(calls[0].get("TokenCode"), None, "{calls:?}");
    assert_eq!(prompter.asked().len(), 1, "not asked again");
}

// ---------------------------------------------------------------------------
// Chained role: AssumeRole
// ---------------------------------------------------------------------------

/// A manager with the IAM-user and chained-role providers on `recorder`,
/// both asking `mfa` for codes.
fn manager(
    recorder: &RecordingMoto,
    mfa: Arc<dyn MfaPrompt>,
) -> (
    SessionManager,
    Arc<InMemorySecretStore>,
    Arc<InMemoryWorkspace>,
) {
    let secrets = Arc::new(InMemorySecretStore::new());
    let repo = Arc::new(InMemoryWorkspace::new());
    let manager = SessionManager::builder()
        .repository(repo.clone())
        .secrets(secrets.clone())
        .provider(Arc::new(
            IamUserProvider::without_sink(client(&recorder.moto)).with_mfa(mfa.clone()),
        ))
        .provider(Arc::new(
            ChainedRoleProvider::without_sink(client(&recorder.moto)).with_mfa(mfa),
        ))
        .build()
        .expect("manager");
    (manager, secrets, repo)
}

/// Adds the IAM user `dev` (MFA device `user_serial`, if any) with a dummy
/// key, and the chained role `deploy` under it with MFA device
/// [`ROLE_SERIAL`].
async fn add_chain(
    manager: &SessionManager,
    secrets: &InMemorySecretStore,
    user_serial: Option<&str>,
) -> (Session, Session) {
    let user = manager
        .add(iam_user("dev", user_serial))
        .await
        .expect("add");
    common::store_user_key(secrets, &user).await;
    let mut role = ChainedRoleConfig::new(ROLE_ARN);
    role.mfa_serial = Some(ROLE_SERIAL.to_owned());
    let child = common::add_chained_role(manager, "deploy", &user, &role).await;
    (user, child)
}

/// Authentication off: the parent is an IAM user, and moto does not
/// register the credentials `GetSessionToken` returns, so with
/// authentication on the child's `AssumeRole` would be refused
/// (`InvalidClientTokenId`, moto's limit; signing is covered in
/// `sts_moto.rs`). What is checked here is the request body, which moto
/// records either way.
///
/// The codes come from an `mfa_process`-style command through one shared
/// prompt, as `sessionctl` composes it: starting the child starts the
/// parent, and each call gets its own device's serial and a fresh code from
/// the command (a code is single-use, so none is sent twice).
#[cfg(unix)]
#[tokio::test]
async fn chained_role_start_sends_its_serial_and_a_fresh_code_from_the_command() {
    use session_aws::mfa::{CommandMfaPrompt, SharedMfaPrompt};

    let Some(recorder) = RecordingMoto::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let asked = dir.path().join("asked");
    // Logs the device it was asked for; answers 714201, then 714202.
    let command = CommandMfaPrompt::shell(format!(
        r#"echo "$SESSION_SDK_MFA_SERIAL" >> '{log}'; echo "71420$(wc -l < '{log}' | tr -d ' ')""#,
        log = asked.display()
    ));
    let mfa = Arc::new(SharedMfaPrompt::new(Arc::new(ChainMfaPrompt::new(vec![
        Arc::new(command),
    ]))));
    let (manager, secrets, repo) = manager(&recorder, mfa);
    let (user, _child) = add_chain(&manager, &secrets, Some(USER_SERIAL)).await;

    let started = manager.start("deploy").await.expect("start the chain");
    assert_eq!(started.status(), SessionStatus::Active);
    assert_eq!(
        repo.get(user.session_id).await.expect("get").status(),
        SessionStatus::Active
    );

    let calls = recorder.calls();
    let actions: Vec<&str> = calls.iter().map(RecordedCall::action).collect();
    assert_eq!(actions, ["GetSessionToken", "AssumeRole"], "{calls:?}");
    assert_eq!(calls[0].get("SerialNumber"), Some(USER_SERIAL), "{calls:?}");
    assert!(calls[0].sends_code("714201"), "{calls:?}");
    assert_eq!(calls[1].get("RoleArn"), Some(ROLE_ARN), "{calls:?}");
    assert_eq!(calls[1].get("SerialNumber"), Some(ROLE_SERIAL), "{calls:?}");
    assert!(
        calls[1].sends_code("714202"),
        "the command's second code, not the first again: {calls:?}"
    );
    let log = std::fs::read_to_string(&asked).expect("the command ran");
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [USER_SERIAL, ROLE_SERIAL],
        "the command was told each device"
    );
}

// ---------------------------------------------------------------------------
// Missing or malformed codes: a clear error, and no request
// ---------------------------------------------------------------------------

/// A prompt answering something that is not 6 digits (a faulty plugin; the
/// built-in prompts check their codes themselves) fails the IAM-user start
/// and the chained-role start as invalid input, without showing the answer,
/// and neither `GetSessionToken` nor `AssumeRole` goes out, so no request
/// with an empty or malformed `TokenCode` reaches STS. Authentication on for
/// the IAM user; off for the chain (see above).
#[tokio::test]
async fn a_malformed_code_fails_the_start_before_any_request() {
    let Some((recorder, key)) = RecordingMoto::with_user("dev") else {
        return;
    };
    let (ctx, _clock) = context();
    for answer in ["", "12345", "1234567", "12x456", " 4829 "] {
        let prompter = Prompter::new(&[answer]);
        let provider =
            IamUserProvider::without_sink(client(&recorder.moto)).with_mfa(prompter.clone());
        let session = iam_user("mfa-user", Some(USER_SERIAL));
        store_moto_key(ctx.secrets.as_ref(), &session, &key).await;
        let err = provider
            .start(&ctx, &pending(session))
            .await
            .expect_err("a malformed code");
        check_malformed_code_error(&err, answer, USER_SERIAL, "mfa-user");
        assert_eq!(prompter.asked().len(), 1, "asked once, not retried");
        let calls = recorder.calls();
        assert!(calls.is_empty(), "{answer:?}: nothing sent: {calls:?}");
    }

    recorder.moto.authentication_off();
    let prompter = Prompter::new(&["12345"]);
    let (manager, secrets, _repo) = manager(&recorder, prompter.clone());
    add_chain(&manager, &secrets, None).await;
    let err = manager
        .start("deploy")
        .await
        .expect_err("a malformed code for the role");
    check_malformed_code_error(&err, "12345", ROLE_SERIAL, "deploy");
    assert_eq!(prompter.asked().len(), 1, "{:?}", prompter.asked());
    assert_eq!(prompter.asked()[0].0, ROLE_SERIAL);
    let calls = recorder.calls();
    let actions: Vec<&str> = calls.iter().map(RecordedCall::action).collect();
    assert_eq!(
        actions,
        ["GetSessionToken"],
        "the parent (no MFA) started, the role sent nothing: {calls:?}"
    );
}

fn check_malformed_code_error(err: &Error, answer: &str, serial: &str, session: &str) {
    let text = err.to_string();
    assert_eq!(err.category(), "invalid_input", "{answer:?}: {text}");
    assert!(text.contains("MFA code"), "{answer:?}: {text}");
    assert!(text.contains("6 digits"), "{answer:?}: {text}");
    assert!(
        text.contains(serial) && text.contains(&format!("'{session}'")),
        "names the device and the session: {text}"
    );
    // The serial (an ARN with the account id) may contain the digits of an
    // answer; the answer must not appear anywhere else.
    let without_serial = text.replace(serial, "");
    let shown = answer.trim();
    if !shown.is_empty() {
        assert!(
            !without_serial.contains(shown),
            "the answer is not echoed: {answer:?}"
        );
    }
}

/// No MFA source at all (the provider's default, and a chain whose only
/// source is a missing terminal) fails the start at once as invalid input
/// naming the device and the session, and sends nothing.
#[tokio::test]
async fn no_mfa_source_fails_naming_the_device_and_sends_nothing() {
    let Some((recorder, key)) = RecordingMoto::with_user("dev") else {
        return;
    };
    let (ctx, _clock) = context();
    let no_terminal: Arc<dyn MfaPrompt> = Arc::new(ChainMfaPrompt::new(vec![Arc::new(
        TerminalMfaPrompt::with_paths("/nonexistent/tty", "/nonexistent/tty"),
    )]));
    let providers = [
        (
            "default",
            IamUserProvider::without_sink(client(&recorder.moto)),
        ),
        (
            "no terminal",
            IamUserProvider::without_sink(client(&recorder.moto)).with_mfa(no_terminal),
        ),
    ];
    for (case, provider) in providers {
        let session = iam_user("mfa-user", Some(USER_SERIAL));
        store_moto_key(ctx.secrets.as_ref(), &session, &key).await;
        let err = provider
            .start(&ctx, &pending(session))
            .await
            .expect_err("no code");
        let text = err.to_string();
        assert_eq!(err.category(), "invalid_input", "{case}: {text}");
        assert!(
            text.contains(USER_SERIAL),
            "{case}: names the device: {text}"
        );
        assert!(
            text.contains("mfa-user"),
            "{case}: names the session: {text}"
        );
        let calls = recorder.calls();
        assert!(calls.is_empty(), "{case}: nothing sent: {calls:?}");
    }
}

/// An MFA command that fails (exit 1) fails the start with its stderr and
/// the device named; nothing is sent.
#[cfg(unix)]
#[tokio::test]
async fn a_failing_mfa_command_fails_the_start_and_sends_nothing() {
    use session_aws::mfa::CommandMfaPrompt;

    let Some((recorder, key)) = RecordingMoto::with_user("dev") else {
        return;
    };
    let (ctx, _clock) = context();
    let command = CommandMfaPrompt::shell("echo 'token locked' >&2; exit 1");
    let provider =
        IamUserProvider::without_sink(client(&recorder.moto)).with_mfa(Arc::new(command));
    let session = iam_user("mfa-user", Some(USER_SERIAL));
    store_moto_key(ctx.secrets.as_ref(), &session, &key).await;
    let err = provider
        .start(&ctx, &pending(session))
        .await
        .expect_err("the command failed");
    let text = err.to_string();
    assert_eq!(err.category(), "provider", "{text}");
    assert!(text.contains("token locked"), "{text}");
    assert!(text.contains(USER_SERIAL), "{text}");
    let calls = recorder.calls();
    assert!(calls.is_empty(), "nothing sent: {calls:?}");
}
