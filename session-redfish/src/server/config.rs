//! The server's settings from a TOML file: [`RedfishServerConfig`], whose
//! docs describe the format.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;
use session_core::{Error, Result, Secret};
use toml::Spanned;

use super::connections::ConnectionLimits;
use super::lockout::LockoutPolicy;
use super::{RedfishServerBuilder, Role, SESSION_TIMEOUT_RANGE};

/// The file's top level.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    bind: Option<Spanned<String>>,
    session_timeout: Option<Spanned<i64>>,
    service_enabled: Option<bool>,
    max_sessions: Option<Spanned<i64>>,
    insecure_http: Option<Spanned<bool>>,
    account_lockout_threshold: Option<Spanned<i64>>,
    account_lockout_duration: Option<Spanned<i64>>,
    account_lockout_counter_reset_after: Option<Spanned<i64>>,
    client_lockout_threshold: Option<Spanned<i64>>,
    idle_timeout: Option<Spanned<i64>>,
    tls_handshake_timeout: Option<Spanned<i64>>,
    max_connections_per_client: Option<Spanned<i64>>,
    tls: Option<Spanned<RawTls>>,
    #[serde(default)]
    accounts: Vec<Spanned<RawAccount>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTls {
    cert_file: Spanned<String>,
    key_file: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAccount {
    user_name: Spanned<String>,
    role: Spanned<RoleName>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    /// Known only to be refused with a clear message; its value is never
    /// kept (`IgnoredAny`), so it cannot leak into an error or `Debug`.
    password: Option<Spanned<IgnoredAny>>,
}

#[derive(Deserialize, Clone, Copy)]
enum RoleName {
    Administrator,
    Operator,
    ReadOnly,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Administrator => Role::Administrator,
            RoleName::Operator => Role::Operator,
            RoleName::ReadOnly => Role::ReadOnly,
        }
    }
}

/// Where a value came from, for error messages: `file:line:column key`.
#[derive(Debug, Clone)]
struct Origin {
    location: String,
    key: String,
}

impl Origin {
    fn error(&self, reason: impl Into<String>) -> Error {
        Error::invalid_input(format!("{}: {}", self.location, self.key), reason)
    }
}

#[derive(Debug, Clone)]
enum PasswordSource {
    Env(String),
    File(PathBuf),
}

#[derive(Debug, Clone)]
struct AccountSpec {
    user_name: String,
    role: Role,
    password: PasswordSource,
    origin: Origin,
}

#[derive(Debug, Clone)]
enum TlsChoice {
    Generated,
    Files {
        cert: (PathBuf, Origin),
        key: (PathBuf, Origin),
    },
    Insecure,
}

/// A validated configuration file; [`into_builder`](Self::into_builder)
/// reads the passwords and gives a [`RedfishServerBuilder`].
///
/// It holds no password (those are read only by `into_builder`), so its
/// `Debug` is safe to log.
///
/// # Format
///
/// Every key, with its default:
///
/// ```
/// # use session_redfish::server::RedfishServerConfig;
/// let text = r#"
/// bind = "127.0.0.1:8443"     # default 127.0.0.1:0 (a free port)
/// sessionTimeout = 1800       # idle timeout in seconds, 30..=86400; default 1800
/// serviceEnabled = true       # default true
/// maxSessions = 64            # default: no limit
///
/// ## Brute-force protection (see `RedfishServerBuilder::account_lockout_threshold`):
/// accountLockoutThreshold = 5          # failures of one user from one address; 0 = off; default 5
/// accountLockoutDuration = 300         # seconds a lock lasts, >= 1; default 300
/// accountLockoutCounterResetAfter = 300 # seconds until failures are forgotten, 1..=duration; default 300
/// clientLockoutThreshold = 20          # failures from one address, any user; 0 = off; default 20
///
/// ## Connections of the started server:
/// idleTimeout = 30             # seconds to wait for a request head (idle keep-alive too); default 30
/// tlsHandshakeTimeout = 10     # seconds; default 10
/// maxConnectionsPerClient = 64 # open connections per client address; default 64
///
/// [tls]                       # default: a CA and certificate generated at start
/// certFile = "server-chain.pem"
/// keyFile = "server-key.pem"
/// ## or, instead of [tls] (plain HTTP, behind a TLS-terminating proxy only):
/// ## insecureHttp = true
///
/// [[accounts]]
/// userName = "admin"
/// role = "Administrator"      # Administrator, Operator or ReadOnly
/// passwordEnv = "REDFISH_ADMIN_PASSWORD"
///
/// [[accounts]]
/// userName = "reader"
/// role = "ReadOnly"
/// passwordFile = "reader.password"
/// "#;
/// let config = RedfishServerConfig::from_toml(text, "/etc/redfish/server.toml")?;
/// # Ok::<(), session_core::Error>(())
/// ```
///
/// Rules:
/// - Keys are camelCase. An unknown key is an error, so a typo such as
///   `sesionTimeout` cannot silently fall back to a default.
/// - Each account takes its password from exactly one of `passwordEnv` (an
///   environment variable, read by [`into_builder`](Self::into_builder)) or
///   `passwordFile` (the whole file, less one trailing newline). A plaintext
///   `password` key is **refused**: a password written in a configuration
///   file ends up in backups, version control and bug reports.
/// - Relative paths (`certFile`, `keyFile`, `passwordFile`) are relative to
///   the configuration file's folder.
/// - At least one account is required, and user names are unique.
///
/// Every error names the file, the line and column, the key and what is
/// wrong, and never contains a password.
///
/// # Example
///
/// ```
/// use session_redfish::server::RedfishServerConfig;
///
/// let config = RedfishServerConfig::from_toml(
///     r#"
///     bind = "127.0.0.1:0"
///     sessionTimeout = 600
///     insecureHttp = true
///
///     [[accounts]]
///     userName = "admin"
///     role = "Administrator"
///     passwordEnv = "REDFISH_ADMIN_PASSWORD"
///     "#,
///     "redfish.toml",
/// )?;
/// // The environment is injectable; `into_builder()` reads the process's.
/// let server = config
///     .into_builder_with_env(|var| {
///         (var == "REDFISH_ADMIN_PASSWORD").then(|| "s3cret-Passw0rd".to_owned())
///     })?
///     .build()?;
/// assert!(server.ca_pem().is_none()); // plain HTTP, as configured
///
/// // Unknown keys are refused, naming the file, line, column and key.
/// let err = RedfishServerConfig::from_toml("sesionTimeout = 600", "redfish.toml").unwrap_err();
/// assert!(err.to_string().contains("redfish.toml:1:1"), "{err}");
/// assert!(err.to_string().contains("sesionTimeout"), "{err}");
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RedfishServerConfig {
    bind: Option<SocketAddr>,
    lockout: LockoutPolicy,
    limits: ConnectionLimits,
    session_timeout: Option<Duration>,
    service_enabled: Option<bool>,
    max_sessions: Option<usize>,
    tls: TlsChoice,
    accounts: Vec<AccountSpec>,
}

/// The text and name of the file being read, to turn byte offsets into
/// `file:line:column`.
struct Source<'a> {
    name: String,
    text: &'a str,
    dir: PathBuf,
}

impl Source<'_> {
    fn location(&self, offset: usize) -> String {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit_once('\n')
            .map_or(before, |(_, rest)| rest)
            .chars()
            .count()
            + 1;
        format!("{}:{line}:{column}", self.name)
    }

    fn origin<T>(&self, value: &Spanned<T>, key: impl Into<String>) -> Origin {
        Origin {
            location: self.location(value.span().start),
            key: key.into(),
        }
    }

    fn path(&self, value: &Spanned<String>) -> PathBuf {
        self.dir.join(value.get_ref())
    }
}

impl RedfishServerConfig {
    /// Reads and validates a configuration file (passwords are read later,
    /// by [`into_builder`](Self::into_builder)).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the file (and, for content errors, the
    /// line, column and key) and what is wrong.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_input(path.display().to_string(), format!("cannot read: {e}"))
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates configuration text. `origin` is the file it
    /// came from: it names the source in errors, and relative paths in the
    /// text are resolved against its folder.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `origin`, the line, column and key, and
    /// what is wrong: a syntax error, an unknown key, a value of the wrong
    /// type or out of range, a bad role, a plaintext `password`, an account
    /// with no or two password sources, a duplicate user name.
    pub fn from_toml(text: &str, origin: impl AsRef<Path>) -> Result<Self> {
        let origin = origin.as_ref();
        let src = Source {
            name: origin.display().to_string(),
            text,
            dir: origin.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| parse_error(&src, e))?;
        Self::validate(&src, raw)
    }

    fn validate(src: &Source<'_>, raw: RawConfig) -> Result<Self> {
        let (lockout, limits) = limits(src, &raw)?;
        let bind = raw
            .bind
            .map(|b| {
                b.get_ref().parse::<SocketAddr>().map_err(|_| {
                    src.origin(&b, "bind")
                        .error("not an IP address and port, e.g. \"127.0.0.1:8443\"")
                })
            })
            .transpose()?;
        let session_timeout = raw
            .session_timeout
            .map(|t| {
                u64::try_from(*t.get_ref())
                    .ok()
                    .filter(|s| SESSION_TIMEOUT_RANGE.contains(s))
                    .map(Duration::from_secs)
                    .ok_or_else(|| {
                        src.origin(&t, "sessionTimeout").error(format!(
                            "must be {}..={} seconds, got {}",
                            SESSION_TIMEOUT_RANGE.start(),
                            SESSION_TIMEOUT_RANGE.end(),
                            t.get_ref()
                        ))
                    })
            })
            .transpose()?;
        let max_sessions = raw
            .max_sessions
            .map(|m| {
                usize::try_from(*m.get_ref())
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| {
                        src.origin(&m, "maxSessions")
                            .error(format!("must be at least 1, got {}", m.get_ref()))
                    })
            })
            .transpose()?;
        let insecure = raw.insecure_http.as_ref().is_some_and(|i| *i.get_ref());
        let tls = match (raw.tls, insecure) {
            (Some(t), true) => {
                return Err(src
                    .origin(&t, "tls")
                    .error("[tls] and insecureHttp = true exclude each other; keep one"));
            }
            (Some(t), false) => {
                let t = t.into_inner();
                TlsChoice::Files {
                    cert: (
                        src.path(&t.cert_file),
                        src.origin(&t.cert_file, "tls.certFile"),
                    ),
                    key: (
                        src.path(&t.key_file),
                        src.origin(&t.key_file, "tls.keyFile"),
                    ),
                }
            }
            (None, true) => TlsChoice::Insecure,
            (None, false) => TlsChoice::Generated,
        };
        if raw.accounts.is_empty() {
            return Err(Error::invalid_input(
                format!("{}: accounts", src.name),
                "no [[accounts]]: the server would accept no login",
            ));
        }
        let mut accounts: Vec<AccountSpec> = Vec::with_capacity(raw.accounts.len());
        for (i, spanned) in raw.accounts.into_iter().enumerate() {
            let table = src.origin(&spanned, format!("accounts[{i}]"));
            let a = spanned.into_inner();
            let key = |name: &str| format!("accounts[{i}].{name}");
            if let Some(p) = &a.password {
                return Err(src.origin(p, key("password")).error(
                    "plaintext passwords are not accepted; use passwordEnv = \"VAR\" or \
                     passwordFile = \"path\"",
                ));
            }
            let user_name = a.user_name.get_ref();
            if user_name.is_empty() || user_name.contains(':') {
                return Err(src
                    .origin(&a.user_name, key("userName"))
                    .error("must be non-empty and contain no ':'"));
            }
            if accounts.iter().any(|o| o.user_name == *user_name) {
                return Err(src
                    .origin(&a.user_name, key("userName"))
                    .error(format!("duplicate user name {user_name:?}")));
            }
            let (password, origin) = match (a.password_env, a.password_file) {
                (Some(var), None) => {
                    if var.get_ref().is_empty() {
                        return Err(src
                            .origin(&var, key("passwordEnv"))
                            .error("names no variable"));
                    }
                    let origin = src.origin(&var, key("passwordEnv"));
                    (PasswordSource::Env(var.into_inner()), origin)
                }
                (None, Some(file)) => {
                    let origin = src.origin(&file, key("passwordFile"));
                    (PasswordSource::File(src.path(&file)), origin)
                }
                (Some(var), Some(_)) => {
                    return Err(src
                        .origin(&var, key("passwordEnv"))
                        .error("give passwordEnv or passwordFile, not both"));
                }
                (None, None) => {
                    return Err(
                        table.error("needs passwordEnv = \"VAR\" or passwordFile = \"path\"")
                    );
                }
            };
            accounts.push(AccountSpec {
                user_name: user_name.clone(),
                role: (*a.role.get_ref()).into(),
                password,
                origin,
            });
        }
        Ok(Self {
            bind,
            lockout,
            limits,
            session_timeout,
            service_enabled: raw.service_enabled,
            max_sessions,
            tls,
            accounts,
        })
    }

    /// Reads the passwords (environment variables from this process) and
    /// returns a builder with every setting applied.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the file, line and key of a password
    /// that cannot be read: an unset or empty variable, an unreadable or
    /// empty file; or of a TLS file that does not exist.
    pub fn into_builder(self) -> Result<RedfishServerBuilder> {
        self.into_builder_with_env(|var| std::env::var(var).ok())
    }

    /// [`into_builder`](Self::into_builder) with `env` in place of the
    /// process environment (for tests and for embedders with their own
    /// secret source).
    ///
    /// # Errors
    ///
    /// As [`into_builder`](Self::into_builder).
    pub fn into_builder_with_env(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<RedfishServerBuilder> {
        let mut builder = RedfishServerBuilder::new()
            .account_lockout_threshold(self.lockout.account_threshold)
            .account_lockout_duration(self.lockout.duration)
            .account_lockout_counter_reset_after(self.lockout.reset_after)
            .client_lockout_threshold(self.lockout.client_threshold)
            .idle_timeout(self.limits.idle_timeout)
            .tls_handshake_timeout(self.limits.tls_handshake_timeout)
            .max_connections_per_client(self.limits.max_per_client);
        if let Some(bind) = self.bind {
            builder = builder.bind(bind);
        }
        if let Some(timeout) = self.session_timeout {
            builder = builder.session_timeout(timeout);
        }
        if let Some(enabled) = self.service_enabled {
            builder = builder.service_enabled(enabled);
        }
        if let Some(max) = self.max_sessions {
            builder = builder.max_sessions(max);
        }
        builder = match self.tls {
            TlsChoice::Generated => builder,
            TlsChoice::Insecure => builder.insecure_http(),
            TlsChoice::Files { cert, key } => {
                for (path, origin) in [&cert, &key] {
                    if let Err(e) = std::fs::metadata(path) {
                        return Err(origin.error(format!("cannot read {}: {e}", path.display())));
                    }
                }
                builder.tls_pem_files(cert.0, key.0)
            }
        };
        for account in self.accounts {
            let password = match &account.password {
                PasswordSource::Env(var) => env(var).ok_or_else(|| {
                    account.origin.error(format!(
                        "environment variable {var} is not set (or not UTF-8)"
                    ))
                })?,
                PasswordSource::File(path) => read_password_file(path, &account.origin)?,
            };
            if password.is_empty() {
                return Err(account.origin.error("the password is empty"));
            }
            builder = builder.account(account.user_name, Secret::new(password), account.role);
        }
        Ok(builder)
    }
}

/// The lockout and connection settings, defaults filled in; errors name
/// the key.
fn limits(src: &Source<'_>, raw: &RawConfig) -> Result<(LockoutPolicy, ConnectionLimits)> {
    // An integer key in `range`, or `default`.
    let int = |value: &Option<Spanned<i64>>,
               key: &str,
               range: std::ops::RangeInclusive<u64>,
               default: u64|
     -> Result<u64> {
        let Some(v) = value else {
            return Ok(default);
        };
        u64::try_from(*v.get_ref())
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                src.origin(v, key).error(format!(
                    "must be {}..={}, got {}",
                    range.start(),
                    range.end(),
                    v.get_ref()
                ))
            })
    };
    let defaults = LockoutPolicy::default();
    let day = 86_400;
    let to_u32 = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let duration = int(
        &raw.account_lockout_duration,
        "accountLockoutDuration",
        1..=day,
        defaults.duration.as_secs(),
    )?;
    let lockout = LockoutPolicy {
        account_threshold: to_u32(int(
            &raw.account_lockout_threshold,
            "accountLockoutThreshold",
            0..=1000,
            defaults.account_threshold.into(),
        )?),
        client_threshold: to_u32(int(
            &raw.client_lockout_threshold,
            "clientLockoutThreshold",
            0..=100_000,
            defaults.client_threshold.into(),
        )?),
        duration: Duration::from_secs(duration),
        reset_after: Duration::from_secs(int(
            &raw.account_lockout_counter_reset_after,
            "accountLockoutCounterResetAfter",
            1..=duration,
            defaults.reset_after.as_secs().min(duration),
        )?),
    };
    let connection = ConnectionLimits::default();
    let limits = ConnectionLimits {
        idle_timeout: Duration::from_secs(int(
            &raw.idle_timeout,
            "idleTimeout",
            1..=3600,
            connection.idle_timeout.as_secs(),
        )?),
        tls_handshake_timeout: Duration::from_secs(int(
            &raw.tls_handshake_timeout,
            "tlsHandshakeTimeout",
            1..=600,
            connection.tls_handshake_timeout.as_secs(),
        )?),
        max_per_client: usize::try_from(int(
            &raw.max_connections_per_client,
            "maxConnectionsPerClient",
            1..=100_000,
            connection.max_per_client as u64,
        )?)
        .unwrap_or(usize::MAX),
    };
    Ok((lockout, limits))
}

/// The file's content less one trailing newline (editors add one).
fn read_password_file(path: &Path, origin: &Origin) -> Result<String> {
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| origin.error(format!("cannot read {}: {e}", path.display())))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// A TOML or schema error as `file:line:column: <key path>: message`.
///
/// The error's `Display` would quote the offending line, which could hold a
/// secret; this uses only the message and the key path.
fn parse_error(src: &Source<'_>, mut e: toml::de::Error) -> Error {
    let location = e
        .span()
        .map_or_else(|| src.name.clone(), |s| src.location(s.start));
    // Without the input, `Display` is the message plus "in `key.path`".
    e.set_input(None);
    let text = e.to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let message = lines.next().unwrap_or("invalid TOML").to_owned();
    let key = lines
        .find_map(|l| l.strip_prefix("in `").and_then(|k| k.strip_suffix('`')))
        .map(str::to_owned);
    match key {
        Some(key) => Error::invalid_input(format!("{location}: {key}"), message),
        None => Error::invalid_input(location, message),
    }
}
