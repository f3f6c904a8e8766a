//! External test peers: third-party processes the tests start and talk to
//! (mock cloud endpoints, emulators), and how to find them.
//!
//! - [`moto`]: the moto test peer ([`MotoServer`](moto::MotoServer), a local
//!   STS/IAM endpoint).
//! - [`sushy`]: the sushy-emulator test peer
//!   ([`SushyEmulator`](sushy::SushyEmulator), a Redfish service with HTTP
//!   Basic auth and no `SessionService`).
//! - [`oidc`]: the oidc-provider test peer
//!   ([`OidcProvider`](oidc::OidcProvider), a local stand-in for Microsoft
//!   Entra ID: client credentials, device code, refresh token) and
//!   device-code approval helpers.
//!
//! `./scripts/test` installs the peers listed in `scripts/peers/` into a cache
//! folder and exports where they are:
//!
//! * `SESSION_PEERS_DIR`: the cache folder (default `.cache/peers`);
//! * `SESSION_PEERS_PYTHON`: the interpreter of the peers' Python venv;
//! * `SESSION_PEERS_NODE_MODULES`: the `node_modules` folder of the npm peers;
//! * `SESSION_PEERS_SMUX_XTACI`: the xtaci/smux harness, an smux v1 server
//!   for the fake SSM agent (see [`smux_xtaci`]);
//! * `SESSION_PEERS_BOUNDARY_GO`: boundary-go, a Boundary worker and client
//!   on the real worker's Go stack (see [`boundary_go`]);
//! * `SESSION_PEERS_LEAPP_CORE`: the `node_modules` folder of Leapp's core
//!   library, npm `@noovolari/leapp-core` (see [`leapp_core`]).
//!
//! A test that needs a peer asks for it through [`require_peer`]. When the
//! peer is missing, the test fails in CI (`CI=true` or `CI=1`) and is skipped
//! loudly elsewhere; it never skips silently.
//!
//! ```no_run
//! use session_testkit::peers::{python_with_module, require_peer};
//!
//! let Some(python) = require_peer("moto (python)", || python_with_module("moto")) else {
//!     return; // skipped outside CI; would have panicked in CI
//! };
//! // ... start `python -m moto.server` and test against it ...
//! # let _ = python;
//! ```

pub mod boundary_go;
mod http;
pub mod leapp_core;
pub mod moto;
pub mod moto_recorder;
pub mod oidc;
pub mod postgres;
mod process;
pub mod sushy;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable holding the Python interpreter of the peers' venv.
pub const PYTHON_ENV: &str = "SESSION_PEERS_PYTHON";

/// Environment variable holding the `node_modules` folder of the npm peers.
pub const NODE_MODULES_ENV: &str = "SESSION_PEERS_NODE_MODULES";

/// Environment variable holding the smux-xtaci harness (built by
/// `./scripts/test` from `session-testkit/peers/smux-xtaci/main.go`).
pub const SMUX_XTACI_ENV: &str = "SESSION_PEERS_SMUX_XTACI";

/// How to get a missing peer, quoted in the skip and failure messages.
pub const INSTALL_HINT: &str = "run ./scripts/test, which installs the test peers listed in \
     scripts/peers/ into .cache/peers (or $SESSION_PEERS_DIR)";

/// Whether the tests run in CI, where a missing peer is a failure.
///
/// True when the environment variable `CI` is `true` or `1` (any case,
/// surrounding blanks ignored).
pub fn in_ci() -> bool {
    ci_value_is_true(std::env::var_os("CI"))
}

fn ci_value_is_true(value: Option<OsString>) -> bool {
    value.and_then(|v| v.into_string().ok()).is_some_and(|v| {
        let v = v.trim();
        v == "1" || v.eq_ignore_ascii_case("true")
    })
}

/// Looks a test peer up with `probe`.
///
/// Returns `Some` with what `probe` found when the peer is available. When
/// `probe` reports it missing (`Err(reason)`):
///
/// * in CI (see [`in_ci`]) this panics, naming the peer, the reason and how to
///   install it, so the test fails;
/// * elsewhere it prints `SKIPPED (peer missing): ...` to stderr and returns
///   `None`; the test should then return early.
///
/// # Panics
///
/// In CI, when the peer is missing.
pub fn require_peer<T>(name: &str, probe: impl FnOnce() -> Result<T, String>) -> Option<T> {
    require_peer_with(name, in_ci(), probe)
}

/// [`require_peer`] with the CI decision passed in instead of read from the
/// environment.
///
/// # Panics
///
/// When `ci` is true and the peer is missing.
pub fn require_peer_with<T>(
    name: &str,
    ci: bool,
    probe: impl FnOnce() -> Result<T, String>,
) -> Option<T> {
    match probe() {
        Ok(found) => Some(found),
        Err(reason) if ci => panic!(
            "test peer `{name}` is missing: {reason}. CI is set, so a missing peer is a \
             failure; {INSTALL_HINT}."
        ),
        Err(reason) => {
            eprintln!(
                "SKIPPED (peer missing): test peer `{name}` is missing: {reason}; {INSTALL_HINT}. \
                 (With CI=true this is a failure.)"
            );
            None
        }
    }
}

/// The Python interpreter of the peers' venv, from `SESSION_PEERS_PYTHON`.
///
/// `None` when the variable is unset or empty, or names no existing file.
pub fn peers_python() -> Option<PathBuf> {
    python_from(std::env::var_os(PYTHON_ENV)).ok()
}

/// The `node_modules` folder of the npm peers, from
/// `SESSION_PEERS_NODE_MODULES`.
///
/// `None` when the variable is unset or empty, or names no existing folder.
pub fn peers_node_modules() -> Option<PathBuf> {
    node_modules_from(std::env::var_os(NODE_MODULES_ENV)).ok()
}

/// A probe for [`require_peer`]: the peers' Python interpreter, provided it
/// can `import module` (e.g. `"moto"`, `"boto3"`).
///
/// # Errors
///
/// Why the interpreter or the module is not available.
pub fn python_with_module(module: &str) -> Result<PathBuf, String> {
    let python = python_from(std::env::var_os(PYTHON_ENV))?;
    let output = Command::new(&python)
        .arg("-c")
        .arg(format!("import {module}"))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if output.status.success() {
        Ok(python)
    } else {
        Err(format!(
            "{} cannot import `{module}`: {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A probe for [`require_peer`]: the folder of the npm package `package` in
/// the peers' `node_modules` (e.g. `"oidc-provider"`).
///
/// # Errors
///
/// Why the package is not available.
pub fn node_package(package: &str) -> Result<PathBuf, String> {
    let node_modules = node_modules_from(std::env::var_os(NODE_MODULES_ENV))?;
    package_in(&node_modules, package)
}

/// A probe for [`require_peer`]: the smux-xtaci harness, an smux v1 server
/// on xtaci/smux (the smux library of the real SSM agent) that the fake
/// agent runs with
/// [`SmuxServer::Xtaci`](crate::fakes::ssm_agent::SmuxServer::Xtaci).
///
/// Found at `$SESSION_PEERS_SMUX_XTACI`, else at
/// `$SESSION_PEERS_DIR/bin/smux-xtaci`.
///
/// # Errors
///
/// Why the harness is not available (unset, missing, not executable).
pub fn smux_xtaci() -> Result<PathBuf, String> {
    smux_xtaci_from(
        std::env::var_os(SMUX_XTACI_ENV),
        std::env::var_os("SESSION_PEERS_DIR"),
    )
}

/// [`smux_xtaci`] from the values of its two variables.
fn smux_xtaci_from(value: Option<OsString>, dir: Option<OsString>) -> Result<PathBuf, String> {
    let path = match path_from(SMUX_XTACI_ENV, value) {
        Ok(path) => path,
        Err(_) => path_from("SESSION_PEERS_DIR", dir)
            .map(|dir| dir.join("bin").join("smux-xtaci"))
            .map_err(|_| format!("neither ${SMUX_XTACI_ENV} nor $SESSION_PEERS_DIR is set"))?,
    };
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(format!(
            "{} is not an executable file (Go or xtaci/smux missing, or the build failed)",
            path.display()
        ))
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// The console script `file_name` that `package` installed into the
/// peers' venv, in the same folder as the venv's `python`.
fn venv_script(python: &Path, file_name: &str, package: &str) -> Result<PathBuf, String> {
    // Not canonicalized: a venv's `bin/python` is a symlink to the base
    // interpreter, whose folder has none of the venv's scripts.
    let dir = python
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| format!("${PYTHON_ENV} = {} has no folder", python.display()))?;
    let script = dir.join(file_name);
    if script.is_file() {
        Ok(script)
    } else {
        Err(format!(
            "{} is not a file ({package} is not installed in the peers' venv)",
            script.display()
        ))
    }
}

fn python_from(value: Option<OsString>) -> Result<PathBuf, String> {
    existing_path(PYTHON_ENV, value, Path::is_file, "a file")
}

fn node_modules_from(value: Option<OsString>) -> Result<PathBuf, String> {
    existing_path(NODE_MODULES_ENV, value, Path::is_dir, "a folder")
}

/// The path in `$var` (its `value`), provided it `exists` (is `kind`).
fn existing_path(
    var: &str,
    value: Option<OsString>,
    exists: fn(&Path) -> bool,
    kind: &str,
) -> Result<PathBuf, String> {
    let path = path_from(var, value)?;
    if exists(&path) {
        Ok(path)
    } else {
        Err(format!("${var} = {} is not {kind}", path.display()))
    }
}

fn package_in(node_modules: &Path, package: &str) -> Result<PathBuf, String> {
    let dir = node_modules.join(package);
    if dir.join("package.json").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "npm package `{package}` is not installed in {}",
            node_modules.display()
        ))
    }
}

fn path_from(var: &str, value: Option<OsString>) -> Result<PathBuf, String> {
    match value {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        _ => Err(format!("${var} is not set")),
    }
}

/// A test credential in a launcher's options: `Debug` shows `"<redacted>"`,
/// never the value.
#[derive(Clone, PartialEq, Eq)]
struct Redacted(String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smux_xtaci_is_looked_up_in_its_variable_then_in_the_peers_dir() {
        let err = smux_xtaci_from(None, None).unwrap_err();
        assert!(
            err.contains(SMUX_XTACI_ENV) && err.contains("SESSION_PEERS_DIR"),
            "{err}"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
        let bin = dir.path().join("bin").join("smux-xtaci");
        std::fs::write(&bin, "#!/bin/sh\n").expect("write");
        let from_dir = || smux_xtaci_from(None, Some(dir.path().into()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let err = from_dir().unwrap_err();
            assert!(err.contains("not an executable file"), "{err}");
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        assert_eq!(from_dir(), Ok(bin.clone()));
        // The variable wins over the folder.
        let elsewhere = dir.path().join("missing");
        let err =
            smux_xtaci_from(Some(elsewhere.clone().into()), Some(dir.path().into())).unwrap_err();
        assert!(err.contains(&elsewhere.display().to_string()), "{err}");
    }

    fn missing() -> Result<PathBuf, String> {
        Err("not installed".to_owned())
    }

    #[test]
    #[should_panic(expected = "test peer `fake-peer` is missing: not installed")]
    fn missing_peer_in_ci_panics() {
        let _ = require_peer_with("fake-peer", true, missing);
    }

    #[test]
    #[should_panic(expected = "./scripts/test")]
    fn ci_panic_says_how_to_install() {
        let _ = require_peer_with("fake-peer", true, missing);
    }

    #[test]
    fn missing_peer_outside_ci_is_skipped() {
        assert_eq!(require_peer_with("fake-peer", false, missing), None);
    }

    #[test]
    fn present_peer_is_returned_in_and_out_of_ci() {
        for ci in [true, false] {
            let found = require_peer_with("fake-peer", ci, || Ok(PathBuf::from("/x/python")));
            assert_eq!(found, Some(PathBuf::from("/x/python")));
        }
    }

    #[test]
    fn ci_values() {
        for yes in ["true", "TRUE", "True", "1", " true\n"] {
            assert!(ci_value_is_true(Some(yes.into())), "{yes:?}");
        }
        for no in ["", "0", "false", "yes"] {
            assert!(!ci_value_is_true(Some(no.into())), "{no:?}");
        }
        assert!(!ci_value_is_true(None));
    }

    #[test]
    fn python_path_must_be_set_and_exist() {
        assert!(python_from(None).unwrap_err().contains("not set"));
        assert!(
            python_from(Some("".into()))
                .unwrap_err()
                .contains("not set")
        );

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("python");
        assert!(
            python_from(Some(missing.clone().into()))
                .unwrap_err()
                .contains("not a file")
        );

        std::fs::write(&missing, "").unwrap();
        assert_eq!(python_from(Some(missing.clone().into())), Ok(missing));
    }

    #[test]
    fn node_package_must_have_a_package_json() {
        assert!(node_modules_from(None).unwrap_err().contains("not set"));

        let dir = tempfile::tempdir().unwrap();
        let nm = node_modules_from(Some(dir.path().into())).unwrap();
        assert!(
            package_in(&nm, "oidc-provider")
                .unwrap_err()
                .contains("not installed")
        );

        std::fs::create_dir(nm.join("oidc-provider")).unwrap();
        std::fs::write(nm.join("oidc-provider/package.json"), "{}").unwrap();
        assert_eq!(
            package_in(&nm, "oidc-provider"),
            Ok(nm.join("oidc-provider"))
        );
    }
}
