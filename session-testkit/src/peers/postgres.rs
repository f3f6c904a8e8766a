//! A real PostgreSQL server on 127.0.0.1 for tests (Debian's `postgresql`
//! package, which `scripts/test` installs): a cluster `initdb`'d in a
//! temporary directory, on a free port, with a password login, stopped and
//! removed when dropped.
//!
//! PostgreSQL refuses to run as root; when the tests do (CI), the server
//! runs as the package's `postgres` user (`setpriv`, which execs, so the
//! process killed on drop is the server itself).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::{self, PeerProcess, StartError, Stdin};

/// How long the server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The role the tests log in as.
pub const USER: &str = "session_sdk";

/// A running PostgreSQL server; see the [module docs](self).
pub struct PostgresServer {
    process: PeerProcess,
    port: u16,
    password: String,
}

impl std::fmt::Debug for PostgresServer {
    // Hand-written: never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresServer")
            .field("port", &self.port)
            .field("pid", &self.process.pid())
            .finish_non_exhaustive()
    }
}

/// The directory of PostgreSQL's programs: `$SESSION_PEERS_PG_BIN`, else
/// the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
///
/// # Errors
///
/// Why none is available.
pub fn postgres_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("SESSION_PEERS_PG_BIN").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(format!(
                "$SESSION_PEERS_PG_BIN={} has no initdb",
                dir.display()
            ))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no /usr/lib/postgresql ({e}); apt-get install postgresql"))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no PostgreSQL under /usr/lib/postgresql; apt-get install postgresql".into())
}

impl PostgresServer {
    /// Initializes a cluster and starts the server.
    ///
    /// # Panics
    ///
    /// When it cannot, quoting the end of its log.
    pub fn start(bin: &Path) -> Self {
        let bin = bin.to_path_buf();
        process::start_on_free_port("postgres", bin.join("postgres").display(), |port| {
            Self::attempt(&bin, port)
        })
    }

    fn attempt(bin: &Path, port: u16) -> Result<Self, StartError> {
        let dir = process::temp_dir("session-sdk-postgres-")?;
        let root = is_root();
        let data = dir.path().join("data");
        let password = random_password();
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, &password)
            .map_err(|e| StartError::failed(format!("cannot write the password file: {e}")))?;
        if root {
            // The server's user must reach the directory and own its data.
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status();
            if !chown.is_ok_and(|s| s.success()) {
                return Err(StartError::failed(
                    "cannot give the temp dir to the postgres user (is the postgresql package installed?)".into(),
                ));
            }
        }
        let mut initdb = as_server_user(root, &bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", password_file.display()));
        let out = initdb
            .output()
            .map_err(|e| StartError::failed(format!("cannot run initdb: {e}")))?;
        if !out.status.success() {
            return Err(StartError::Failed {
                reason: format!("initdb failed ({})", out.status),
                tail: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let _ = std::fs::remove_file(&password_file);
        let mut server = as_server_user(root, &bin.join("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(dir.path())
            .args(["-c", &format!("listen_addresses={}", Ipv4Addr::LOCALHOST)])
            // Tests need no durability across a machine crash.
            .args(["-c", "fsync=off", "-c", "max_connections=200"]);
        let mut process = PeerProcess::spawn(server, dir, "postgres.log", Stdin::Null)?;
        process.wait_until_ready(READY_TIMEOUT, |log| {
            if log.contains("database system is ready to accept connections") {
                Ok(())
            } else {
                Err("it did not say it accepts connections".into())
            }
        })?;
        Ok(Self {
            process,
            port,
            password,
        })
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://session_sdk@127.0.0.1:PORT/postgres`, without the
    /// password (see [`password`](Self::password)).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// The password of [`USER`].
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The URL with the password in it, for clients that take only a URL.
    pub fn url_with_password(&self) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program`, run as the `postgres` user when we are root.
fn as_server_user(root: bool, program: &Path) -> Command {
    if root {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// 24 random letters and digits.
fn random_password() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..24)
        .map(|i| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_usize(i);
            char::from(ALPHABET[(hasher.finish() % ALPHABET.len() as u64) as usize])
        })
        .collect()
}
