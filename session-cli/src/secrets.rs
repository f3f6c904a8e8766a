//! Choosing and opening the secret store, and reading secret values.
//!
//! - `--secret-store file` (the default): an
//!   [`EncryptedFileSecretStore`] at `--secrets-file` /
//!   `SESSIONCTL_SECRETS_FILE`, or `secrets.enc` next to the workspace file.
//!   Its passphrase comes from `SESSIONCTL_PASSPHRASE`; when that is unset
//!   and there is a terminal, it is asked for without echo; with no terminal
//!   the command fails at once with an error naming `SESSIONCTL_PASSPHRASE`.
//! - `--secret-store keyring`: the OS keychain, only in a sessionctl built
//!   with the `keyring` feature.
//!
//! Values and passphrases are held only in [`Secret`]s and never printed or
//! logged. Every value this process reads (the passphrase, values on
//! standard input or from the environment, everything the secret store
//! hands out or takes in) also goes to one [`Redactor`]
//! ([`redactor`]), which scrubs them from the errors and logs sessionctl
//! prints: a service may echo a password back in its error text.

// Shared by the provider modules: a build without some of them leaves
// some of these unused.
#![cfg_attr(
    not(all(feature = "aws", feature = "azure", feature = "redfish")),
    allow(dead_code)
)]

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use clap::ValueEnum;
use session_sdk::redact::Redactor;
use session_sdk::{EncryptedFileSecretStore, Error, Secret, SecretStore};
use zeroize::Zeroize;

use crate::{Failure, Global};

/// The environment variable holding the secrets file's passphrase.
pub(crate) const PASSPHRASE_ENV: &str = "SESSIONCTL_PASSPHRASE";

/// The secrets file's name when `--secrets-file` is not given: it sits next
/// to the workspace file.
const DEFAULT_SECRETS_FILE: &str = "secrets.enc";

/// The longest secret value accepted on standard input.
const MAX_VALUE_LEN: u64 = 1024 * 1024;

/// Which secret store to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum StoreKind {
    /// A file encrypted with a passphrase (Argon2id + XChaCha20-Poly1305).
    File,
    /// The OS keychain (needs the `keyring` build feature).
    Keyring,
}

/// Every secret value this process has seen; see the module docs.
pub(crate) fn redactor() -> &'static Redactor {
    static REDACTOR: OnceLock<Redactor> = OnceLock::new();
    REDACTOR.get_or_init(Redactor::new)
}

/// `secret`, after telling the [`redactor`] about it.
fn seen(secret: Secret) -> Secret {
    redactor().add(&secret);
    secret
}

/// Opens the store chosen by the flags, watched by the [`redactor`].
/// Blocking work (key derivation, file reads) runs off the async thread.
pub(crate) async fn open(
    global: &Global,
    workspace: &Path,
) -> Result<Arc<dyn SecretStore>, Failure> {
    match global.secret_store {
        StoreKind::File => {
            let path = secrets_file(global, workspace);
            let passphrase = passphrase(&path)?;
            tracing::debug!(path = %path.display(), "opening the encrypted secrets file");
            let opened = tokio::task::spawn_blocking(move || {
                EncryptedFileSecretStore::open(path, passphrase)
            })
            .await
            .map_err(|e| Failure::Other(format!("opening the secrets file failed: {e}")))?;
            Ok(redactor().watch(Arc::new(opened?)))
        }
        StoreKind::Keyring => Ok(redactor().watch(keyring()?)),
    }
}

/// The OS keychain store.
#[cfg(feature = "keyring")]
fn keyring() -> Result<Arc<dyn SecretStore>, Failure> {
    tracing::debug!("using the OS keychain");
    Ok(Arc::new(
        session_sdk::secret_store::KeyringSecretStore::new(),
    ))
}

/// Without the `keyring` feature there is no keychain store: a usage error.
#[cfg(not(feature = "keyring"))]
fn keyring() -> Result<Arc<dyn SecretStore>, Failure> {
    Err(Failure::Usage(
        "--secret-store keyring: this sessionctl was built without the `keyring` feature; \
         rebuild it with `--features keyring` or use --secret-store file"
            .into(),
    ))
}

/// `--secrets-file`, else `secrets.enc` in the workspace file's directory.
pub(crate) fn secrets_file(global: &Global, workspace: &Path) -> PathBuf {
    match global
        .secrets_file
        .as_ref()
        .filter(|path| !path.as_os_str().is_empty())
    {
        Some(path) => path.clone(),
        None => workspace.with_file_name(DEFAULT_SECRETS_FILE),
    }
}

/// The passphrase of the secrets file at `path`: `SESSIONCTL_PASSPHRASE`, or
/// asked on the terminal.
fn passphrase(path: &Path) -> Result<Secret, Failure> {
    match std::env::var(PASSPHRASE_ENV) {
        Ok(value) if !value.is_empty() => return Ok(seen(Secret::new(value))),
        Ok(_) | Err(std::env::VarError::NotPresent) => {}
        Err(std::env::VarError::NotUnicode(raw)) => {
            raw.into_encoded_bytes().zeroize();
            return Err(Error::invalid_input(PASSPHRASE_ENV, "is not valid UTF-8").into());
        }
    }
    if !(std::io::stdin().is_terminal() || std::io::stderr().is_terminal()) {
        return Err(Error::secret_store(
            format!(
                "no passphrase for {}: set {PASSPHRASE_ENV} (there is no terminal to ask on)",
                path.display()
            ),
            None,
        )
        .into());
    }
    let ask =
        |prompt: String| {
            rpassword::prompt_password(prompt).map(|p| seen(Secret::new(p))).map_err(|e| {
            Error::secret_store(
                format!("cannot read the passphrase from the terminal ({e}); set {PASSPHRASE_ENV}"),
                None,
            )
        })
        };
    let first = ask(format!("Passphrase for {}: ", path.display()))?;
    if first.is_empty() {
        return Err(Error::invalid_input("passphrase", "must not be empty").into());
    }
    if !path.exists() {
        // A new file: a typo now would lock the secrets away for good.
        let again = ask("Repeat the passphrase: ".into())?;
        if again != first {
            return Err(Error::invalid_input("passphrase", "the two entries differ").into());
        }
    }
    Ok(first)
}

/// Reads the value of secret `name` from standard input: asked without echo
/// on a terminal, else read to the end with one trailing newline removed.
/// An empty value is refused.
pub(crate) fn read_value(name: &str) -> Result<Secret, Failure> {
    let stdin = std::io::stdin();
    let value = if stdin.is_terminal() {
        rpassword::prompt_password(format!("Value of secret {name}: ")).map_err(|e| {
            Error::invalid_input(
                "secret value",
                format!("cannot read it from the terminal: {e}"),
            )
        })?
    } else {
        read_piped(&mut stdin.lock())?
    };
    if value.is_empty() {
        return Err(Error::invalid_input(
            "secret value",
            format!(
                "standard input gave an empty value for {name}; pipe the value in on standard input"
            ),
        )
        .into());
    }
    Ok(seen(Secret::new(value)))
}

/// Reads `input` to the end (at most [`MAX_VALUE_LEN`] bytes) and strips one
/// trailing `\n` or `\r\n`. The buffer is zeroed on every error path.
fn read_piped(input: &mut impl Read) -> Result<String, Failure> {
    let mut bytes = Vec::with_capacity(4096);
    let read = input.take(MAX_VALUE_LEN + 1).read_to_end(&mut bytes);
    let refuse = |bytes: &mut Vec<u8>, reason: String| -> Result<String, Failure> {
        bytes.zeroize();
        Err(Error::invalid_input("secret value", reason).into())
    };
    if let Err(e) = read {
        return refuse(&mut bytes, format!("cannot read standard input: {e}"));
    }
    if bytes.len() as u64 > MAX_VALUE_LEN {
        return refuse(
            &mut bytes,
            format!("longer than {MAX_VALUE_LEN} bytes on standard input"),
        );
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    match String::from_utf8(bytes) {
        Ok(value) => Ok(value),
        Err(e) => refuse(&mut e.into_bytes(), "is not valid UTF-8".into()),
    }
}

/// A secret for `add`: from the environment variable named by `flag`'s
/// value `env_var` when given, else from standard input ([`read_value`]).
pub(crate) fn from_env_or_stdin(
    flag: &str,
    env_var: Option<&str>,
    name: &str,
) -> Result<Secret, Failure> {
    match env_var {
        Some(var) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Ok(seen(Secret::new(value))),
            _ => Err(session_sdk::Error::invalid_input(
                flag,
                format!("the environment variable {var} is unset or empty"),
            )
            .into()),
        },
        None => read_value(name),
    }
}

/// Adds `session`, then stores `secret` as its `secret_name` (see
/// [`add_with_secrets`]).
pub(crate) async fn add_with_secret(
    global: &Global,
    workspace: &crate::workspace::Workspace,
    session: session_sdk::Session,
    secret_name: &str,
    secret: &Secret,
) -> Result<String, Failure> {
    add_with_secrets(global, workspace, session, &[(secret_name, secret)]).await
}

/// Adds `session`, then stores its `secrets` (name, value); returns the
/// `added …` line.
///
/// The session is written first so that a crash (`kill -9`) at any moment
/// never leaves a secret no command can reach: at worst the session exists
/// with some secrets missing, where `list` shows it, `start` says which
/// secret is missing, and `secret set` or `remove` fix it. If storing a
/// secret fails, the secrets stored so far and then the session are
/// removed again (in that order, for the same reason).
pub(crate) async fn add_with_secrets(
    global: &Global,
    workspace: &crate::workspace::Workspace,
    session: session_sdk::Session,
    secrets: &[(&str, &Secret)],
) -> Result<String, Failure> {
    use session_sdk::{SecretKey, WorkspaceRepository};
    let keys = secrets
        .iter()
        .map(|(name, _)| SecretKey::new(session.session_id, *name))
        .collect::<Result<Vec<_>, _>>()?;
    // Opened before the session is written: a wrong passphrase adds nothing.
    let store = open(global, workspace.path()).await?;
    let session = workspace.insert(session).await?;
    let id = session.session_id;
    for (key, (_, secret)) in keys.iter().zip(secrets) {
        if let Err(error) = store.put(key, secret).await {
            let _ = store.delete_session(id).await;
            let _ = workspace.delete(id, None).await;
            return Err(error.into());
        }
    }
    Ok(format!("added {}\n", session.label()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piped(input: &[u8]) -> Result<String, String> {
        read_piped(&mut &input[..]).map_err(|f| f.message())
    }

    #[test]
    fn strips_exactly_one_newline() {
        assert_eq!(piped(b"abc\n").unwrap(), "abc");
        assert_eq!(piped(b"abc\r\n").unwrap(), "abc");
        assert_eq!(piped(b"abc\n\n").unwrap(), "abc\n");
        assert_eq!(piped(b"abc").unwrap(), "abc");
        assert_eq!(piped(b" a b \n").unwrap(), " a b ");
    }

    #[test]
    fn refuses_invalid_utf8_and_oversized_input() {
        assert!(piped(b"\xff\xfe").unwrap_err().contains("UTF-8"));
        let big = vec![b'x'; MAX_VALUE_LEN as usize + 1];
        assert!(piped(&big).unwrap_err().contains("longer than"));
    }
}
