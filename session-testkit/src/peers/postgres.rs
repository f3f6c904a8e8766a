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
    tls: Option<ServerTls>,
}

/// The certificates of a server started with
/// [`start_with_tls`](PostgresServer::start_with_tls), as PEM files in its
/// directory. The server's certificate names `localhost` only (no IP
/// address), so a client that checks host names accepts it for
/// `localhost` and refuses it for `127.0.0.1`.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The CA that signed the server's certificate and the client's.
    pub ca_file: PathBuf,
    /// Another CA, which signed nothing the server has.
    pub other_ca_file: PathBuf,
    /// A client certificate for [`USER`], signed by the CA, and its key.
    pub client_cert_file: PathBuf,
    /// The key of `client_cert_file`.
    pub client_key_file: PathBuf,
    /// A client certificate for [`USER`] signed by the other CA (the
    /// server refuses it), and its key.
    pub foreign_cert_file: PathBuf,
    /// The key of `foreign_cert_file`.
    pub foreign_key_file: PathBuf,
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
            Self::attempt(&bin, port, false)
        })
    }

    /// [`start`](Self::start), with TLS only: `ssl=on` with a certificate
    /// for `localhost` from a CA of its own, and every TCP login line of
    /// `pg_hba.conf` made `hostssl`, so a connection without TLS is
    /// refused. Client certificates signed by the CA are checked when a
    /// client sends one (not required). See [`tls`](Self::tls).
    ///
    /// # Panics
    ///
    /// When it cannot, quoting the end of its log.
    pub fn start_with_tls(bin: &Path) -> Self {
        let bin = bin.to_path_buf();
        process::start_on_free_port("postgres", bin.join("postgres").display(), |port| {
            Self::attempt(&bin, port, true)
        })
    }

    /// The certificates, for a server started with TLS.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
    }

    fn attempt(bin: &Path, port: u16, with_tls: bool) -> Result<Self, StartError> {
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
        let tls = if with_tls {
            Some(set_up_tls(dir.path(), &data, root)?)
        } else {
            None
        };
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
        if with_tls {
            let path = |name: &str| dir.path().join(name).display().to_string();
            server
                .args(["-c", "ssl=on"])
                .args(["-c", &format!("ssl_cert_file={}", path("server.crt"))])
                .args(["-c", &format!("ssl_key_file={}", path("server.key"))])
                .args(["-c", &format!("ssl_ca_file={}", path("ca.crt"))]);
        }
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
            tls,
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

/// Writes a CA, the server's certificate and key, client certificates,
/// and makes `pg_hba.conf` accept TCP logins over TLS only.
fn set_up_tls(dir: &Path, data: &Path, root: bool) -> Result<ServerTls, StartError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let failed = |what: &str, e: &dyn std::fmt::Display| StartError::failed(format!("{what}: {e}"));
    let new_ca = |name: &str| -> Result<(String, Issuer<'static, KeyPair>), StartError> {
        let key = KeyPair::generate().map_err(|e| failed("generate a key", &e))?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params
            .self_signed(&key)
            .map_err(|e| failed("sign the CA", &e))?;
        Ok((cert.pem(), Issuer::new(params, key)))
    };
    let leaf = |issuer: &Issuer<'static, KeyPair>, sans: Vec<String>, cn: &str| {
        let key = KeyPair::generate().map_err(|e| failed("generate a key", &e))?;
        let mut params =
            CertificateParams::new(sans).map_err(|e| failed("certificate names", &e))?;
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params
            .signed_by(&key, issuer)
            .map_err(|e| failed("sign a certificate", &e))?;
        Ok::<_, StartError>((cert.pem(), key.serialize_pem()))
    };
    let (ca_pem, ca) = new_ca("session-sdk test CA")?;
    let (other_pem, other) = new_ca("another CA")?;
    let (server_pem, server_key) = leaf(&ca, vec!["localhost".into()], "localhost")?;
    let (client_pem, client_key) = leaf(&ca, Vec::new(), USER)?;
    let (foreign_pem, foreign_key) = leaf(&other, Vec::new(), USER)?;
    let write = |name: &str, text: &str| -> Result<PathBuf, StartError> {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| failed(&format!("write {name}"), &e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| failed(&format!("chmod {name}"), &e))?;
        Ok(path)
    };
    write("server.crt", &server_pem)?;
    write("server.key", &server_key)?;
    let tls = ServerTls {
        ca_file: write("ca.crt", &ca_pem)?,
        other_ca_file: write("other-ca.crt", &other_pem)?,
        client_cert_file: write("client.crt", &client_pem)?,
        client_key_file: write("client.key", &client_key)?,
        foreign_cert_file: write("foreign.crt", &foreign_pem)?,
        foreign_key_file: write("foreign.key", &foreign_key)?,
    };
    if root {
        // The server reads its key as its own user, and only then.
        let chown = Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.join("server.key"))
            .arg(dir.join("server.crt"))
            .arg(dir.join("ca.crt"))
            .status();
        if !chown.is_ok_and(|s| s.success()) {
            return Err(StartError::failed(
                "cannot give the server's key to the postgres user".into(),
            ));
        }
    }
    let hba = data.join("pg_hba.conf");
    let text = std::fs::read_to_string(&hba).map_err(|e| failed("read pg_hba.conf", &e))?;
    let tls_only: String = text
        .lines()
        .map(|line| match line.strip_prefix("host ") {
            Some(rest) => format!("hostssl {rest}\n"),
            None => format!("{line}\n"),
        })
        .collect();
    std::fs::write(&hba, tls_only).map_err(|e| failed("write pg_hba.conf", &e))?;
    Ok(tls)
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
