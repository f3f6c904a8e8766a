//! `sessionctl connect` of an `AWS-StartSSHSession` session as the
//! `ProxyCommand` of the real OpenSSH client, to a real OpenSSH server.
//!
//! The SSM side is session-testkit's fake control plane and fake agent; the
//! agent dials `127.0.0.1:<portNumber>`, where a throwaway `sshd` listens.
//! Unlike the echo-server tests in `cli_ssm.rs`, here ssh itself decides how
//! to start and end its proxy (stdin, stdout, SIGHUP), and any byte lost,
//! added or reordered breaks its key exchange or its MACs.
#![cfg(all(unix, feature = "aws-ssm"))]

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ssm::{Ssm, TARGET, add_ssh_stream, status_of};
use common::*;
use session_core::SessionStatus;
use session_testkit::fakes::ssm::SessionStatus as SsmStatus;
use session_testkit::fakes::ssm_agent::AgentScenario;
use session_testkit::peers::require_peer;

/// How long sshd may take to listen, and ssh to run one command.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How long sessionctl may take to wind down once ssh has exited.
const WIND_DOWN: Duration = Duration::from_secs(10);

/// The OpenSSH programs the tests run.
struct OpenSsh {
    sshd: PathBuf,
    ssh: PathBuf,
    keygen: PathBuf,
}

/// The probe for [`require_peer`]: Debian's `openssh-server` and
/// `openssh-client`. sshd must be named by an absolute path (it re-executes
/// itself for each connection), hence the fixed place rather than `PATH`.
fn openssh() -> Result<OpenSsh, String> {
    let found = |path: &str| {
        let path = PathBuf::from(path);
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{} not found (Debian: apt-get install openssh-server openssh-client)",
                path.display()
            ))
        }
    };
    Ok(OpenSsh {
        sshd: found("/usr/sbin/sshd")?,
        ssh: found("/usr/bin/ssh")?,
        keygen: found("/usr/bin/ssh-keygen")?,
    })
}

/// Output of a child read to the end on a thread of its own, so a child
/// that writes much never blocks on a full pipe.
struct Collected {
    text: Arc<Mutex<Vec<u8>>>,
    closed: Arc<AtomicBool>,
}

impl Collected {
    fn from(mut pipe: impl Read + Send + 'static) -> Self {
        let text = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let (sink, done) = (Arc::clone(&text), Arc::clone(&closed));
        std::thread::spawn(move || {
            let mut chunk = [0; 64 * 1024];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
            done.store(true, Ordering::SeqCst);
        });
        Collected { text, closed }
    }

    fn bytes(&self) -> Vec<u8> {
        self.text.lock().unwrap().clone()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// Whether every writer has closed the pipe: for ssh's standard error,
    /// that ssh and the `ProxyCommand` it started (which inherits it) have
    /// both exited.
    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// Runs `ssh-keygen` for a new ed25519 key without a passphrase at `path`.
fn keygen(openssh: &OpenSsh, path: &Path) {
    let output = Command::new(&openssh.keygen)
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "cli_ssm_openssh",
            "-f",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(output.status.success(), "ssh-keygen: {output:?}");
}

/// The login name of this process: sshd lets in only that user when it
/// runs unprivileged, and root when the tests run as root (as in CI).
/// As root with `UsePAM no`, sshd refuses an account whose shadow password
/// starts with `!` (locked); Debian images have `*` for root, which it
/// accepts. Unprivileged, it cannot read the shadow file and lets the user
/// in either way (checked as a user with `!`).
fn login_name() -> String {
    let output = Command::new("id").arg("-un").output().expect("run id -un");
    assert!(output.status.success(), "id -un: {output:?}");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// A foreground `sshd` on 127.0.0.1 with a fresh host key, letting in one
/// fresh client key; killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    log: Collected,
    /// The client's private key.
    key: PathBuf,
    /// Holds the keys and the configuration until the server is gone.
    _dir: tempfile::TempDir,
}

impl Sshd {
    fn start(openssh: &OpenSsh) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let host_key = dir.path().join("host_ed25519");
        let key = dir.path().join("client_ed25519");
        keygen(openssh, &host_key);
        keygen(openssh, &key);
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(key.with_extension("pub"), &authorized).expect("authorized_keys");
        let root = rustix::process::geteuid().is_root();
        if root {
            // Privilege separation needs this empty directory; a container
            // that never ran the sshd service lacks it.
            std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        }
        // StrictModes off: the temp dir's modes are not sshd's business
        // here. PAM off: no PAM stack is configured for a private sshd, and
        // unprivileged it could not use one anyway. Only public-key logins.
        let config = format!(
            "HostKey {host}\n\
             AuthorizedKeysFile {authorized}\n\
             ListenAddress 127.0.0.1\n\
             PidFile none\n\
             UsePAM no\n\
             StrictModes no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             {permit_root}",
            host = host_key.display(),
            authorized = authorized.display(),
            permit_root = if root {
                "PermitRootLogin prohibit-password\n"
            } else {
                ""
            },
        );
        let config_path = dir.path().join("sshd_config");
        std::fs::write(&config_path, config).expect("write sshd_config");
        // A free port can be taken between our probe and sshd's bind; try
        // a few.
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&openssh.sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config_path)
                .arg("-p")
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn sshd");
            let log = Collected::from(child.stderr.take().expect("stderr"));
            let listening = format!("Server listening on 127.0.0.1 port {port}.");
            let start = Instant::now();
            loop {
                if log.text().contains(&listening) {
                    return Sshd {
                        child,
                        port,
                        log,
                        key,
                        _dir: dir,
                    };
                }
                if child.try_wait().expect("try_wait").is_some() {
                    break;
                }
                assert!(
                    start.elapsed() < TIMEOUT,
                    "sshd did not listen: {}",
                    log.text()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            // Let the reader take the last lines of the exited server.
            std::thread::sleep(Duration::from_millis(50));
            last_log = log.text();
        }
        panic!("sshd did not start: {last_log}");
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port of 127.0.0.1 that nothing listens on (at the time of asking).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// The children of process `pid` (Linux's `/proc/PID/task/PID/children`;
/// none elsewhere): ssh's `ProxyCommand` is one.
fn children_of(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

/// Whether process `pid` still runs (neither gone nor a zombie).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, after_name) = stat.rsplit_once(')')?;
            after_name
                .split_whitespace()
                .next()
                .map(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// Sends SIGHUP to process `pid`, as ssh ends its `ProxyCommand`, and
/// SIGKILL if it still runs 2 s later; says which ended it.
fn end_proxy(pid: i32) -> String {
    let Some(process) = rustix::process::Pid::from_raw(pid) else {
        return format!("{pid}: not a pid");
    };
    let _ = rustix::process::kill_process(process, rustix::process::Signal::HUP);
    let start = Instant::now();
    while running(pid) && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if running(pid) {
        let _ = rustix::process::kill_process(process, rustix::process::Signal::KILL);
        format!("{pid}: still running 2 s after SIGHUP; killed")
    } else {
        format!("{pid}: ended by SIGHUP")
    }
}

/// Quotes `word` for the POSIX shell ssh runs its `ProxyCommand` with.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// What one run of ssh did.
struct SshRun {
    status: ExitStatus,
    stdout: Vec<u8>,
    /// ssh's standard error, which its `ProxyCommand` (sessionctl) shares.
    stderr: Collected,
}

/// The SSM fakes, a real sshd, and a workspace with the
/// `AWS-StartSSHSession` session `ssh` to the sshd's port.
struct World {
    openssh: OpenSsh,
    ssm: Ssm,
    sshd: Sshd,
    fx: Fixture,
    user: String,
}

impl World {
    /// `None` when OpenSSH is missing outside CI (the test is then skipped
    /// loudly); in CI a missing OpenSSH fails.
    fn start() -> Option<Self> {
        let openssh = require_peer("OpenSSH (sshd, ssh, ssh-keygen)", openssh)?;
        let ssm = Ssm::start(AgentScenario::default());
        let sshd = Sshd::start(&openssh);
        let fx = Fixture::new();
        add_ssh_stream(&fx, "ssh", sshd.port);
        Some(World {
            openssh,
            ssm,
            sshd,
            fx,
            user: login_name(),
        })
    }

    /// Runs `ssh … USER@ignored-host REMOTE` with `sessionctl connect ssh`
    /// as its `ProxyCommand`, `stdin` as its standard input; waits for it
    /// (killing it after [`TIMEOUT`]).
    fn ssh(&self, remote: &str, stdin: Stdio) -> SshRun {
        // The sessionctl command line and environment exactly as the other
        // tests run it, handed to ssh, which passes its environment on to
        // the ProxyCommand.
        let mut sessionctl = self.fx.command(&["connect", "ssh"]);
        sessionctl.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
        for (name, value) in self.ssm.env(&self.fx) {
            sessionctl.env(name, value);
        }
        let proxy: Vec<String> = std::iter::once(sessionctl.get_program())
            .chain(sessionctl.get_args())
            .map(|word| shell_quote(word.to_str().expect("UTF-8")))
            .collect();
        let mut ssh = Command::new(&self.openssh.ssh);
        for (name, value) in sessionctl.get_envs() {
            match value {
                Some(value) => ssh.env(name, value),
                None => ssh.env_remove(name),
            };
        }
        ssh.args(["-F", "/dev/null", "-i"])
            .arg(&self.sshd.key)
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                // Bounds ssh's wait for sshd's banner: a proxy that carries
                // no bytes fails the test as ssh's own error, in seconds.
                "-o",
                "ConnectTimeout=15",
                // Keeps "Permanently added … to the list of known hosts"
                // out of the standard error the assertions print.
                "-o",
                "LogLevel=ERROR",
            ])
            .arg("-o")
            .arg(format!("ProxyCommand={}", proxy.join(" ")))
            .arg(format!("{}@ignored-host", self.user))
            .arg(remote)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = ssh.spawn().expect("spawn ssh");
        let stdout = Collected::from(child.stdout.take().expect("stdout"));
        let stderr = Collected::from(child.stderr.take().expect("stderr"));
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if start.elapsed() > TIMEOUT {
                let proxies = children_of(child.id());
                let _ = child.kill();
                let _ = child.wait();
                // ssh killed with SIGKILL cannot end its proxy: end it as
                // ssh would have (SIGHUP), and kill it if that fails, so no
                // sessionctl outlives the test.
                let proxies: Vec<String> = proxies.into_iter().map(end_proxy).collect();
                panic!(
                    "ssh did not exit within {TIMEOUT:?}\nssh/sessionctl stderr: {}\n\
                     sshd: {}\nstdout so far: {} bytes\nthe ProxyCommand: {proxies:?}\n\
                     the agent: {:#?}",
                    stderr.text(),
                    self.sshd.log.text(),
                    stdout.bytes().len(),
                    self.ssm.agent.all_stats()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // ssh's stdout has no other writer: it is complete once closed.
        while !stdout.closed() {
            assert!(start.elapsed() < TIMEOUT + WIND_DOWN, "stdout still open");
            std::thread::sleep(Duration::from_millis(10));
        }
        SshRun {
            status,
            stdout: stdout.bytes(),
            stderr,
        }
    }

    /// What to print when an assertion fails: both sides' logs.
    fn logs(&self, run: &SshRun) -> String {
        format!(
            "ssh/sessionctl stderr:\n{}\nsshd:\n{}",
            run.stderr.text(),
            self.sshd.log.text()
        )
    }

    /// After ssh has exited: sessionctl exits too (the shared standard
    /// error closes), the workspace session is `inactive`, the SSM session
    /// is terminated, and the fake agent forwarded exactly one raw stream
    /// to sshd. Returns the agent's statistics of that session.
    #[track_caller]
    fn assert_wound_down(&self, run: &SshRun) -> session_testkit::fakes::ssm_agent::SessionStats {
        let start = Instant::now();
        loop {
            let inactive = status_of(&self.fx, "ssh") == SessionStatus::Inactive;
            let terminated = self
                .ssm
                .sessions()
                .iter()
                .all(|s| s.status == SsmStatus::Terminated);
            if run.stderr.closed() && inactive && terminated {
                eprintln!("wound down {:?} after ssh exited", start.elapsed());
                break;
            }
            assert!(
                start.elapsed() < WIND_DOWN,
                "{WIND_DOWN:?} after ssh exited: sessionctl exited: {}, session inactive: \
                 {inactive}, SSM session terminated: {terminated} ({:?})\n{}",
                run.stderr.closed(),
                self.ssm.sessions(),
                self.logs(run)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let sessions = self.ssm.sessions();
        assert_eq!(sessions.len(), 1, "one SSM session: {sessions:?}");
        assert_eq!(sessions[0].target, TARGET);
        assert_eq!(
            sessions[0].document_name.as_deref(),
            Some("AWS-StartSSHSession")
        );
        assert_eq!(
            sessions[0].parameters["portNumber"],
            [self.sshd.port.to_string()]
        );
        let all = self.ssm.agent.all_stats();
        assert_eq!(all.len(), 1, "one agent session: {all:?}");
        let stats = all.into_values().next().expect("one");
        assert_eq!(stats.mux, Some(false), "one raw stream: {stats:?}");
        assert_eq!(stats.target_connections, 1, "{stats:?}");
        // The login went through the proxy: sshd accepted our key.
        let accepted = format!("Accepted publickey for {} from 127.0.0.1", self.user);
        assert!(
            self.sshd.log.text().contains(&accepted),
            "{}",
            self.logs(run)
        );
        stats
    }
}

/// A remote command's output and exit status come back through sessionctl,
/// and when ssh is done with its proxy, sessionctl stops the session.
#[test]
fn ssh_runs_a_command_through_sessionctl_as_its_proxy_command() {
    let Some(world) = World::start() else {
        return;
    };
    let started = Instant::now();
    let run = world.ssh("echo hello-from-sshd; exit 7", Stdio::null());
    let took = started.elapsed();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "hello-from-sshd\n",
        "{}",
        world.logs(&run)
    );
    assert_eq!(run.status.code(), Some(7), "{}", world.logs(&run));
    world.assert_wound_down(&run);
    eprintln!("ssh through sessionctl: {took:?}");
    drop(world.ssm.rt);
}

/// 4 MiB of pseudo-random bytes from ssh's standard input to the remote
/// `cat` and back, byte for byte, through the fake agent both ways.
///
/// Heavy traffic both ways at once is what ssh does and the echo tests do
/// not. On a loaded machine this has been seen to hang: ssh then gets no
/// more bytes although the agent's output was all acknowledged, and
/// sessionctl ignores SIGHUP (the timeout's message says so).
#[test]
fn ssh_copies_4_mib_both_ways_through_sessionctl() {
    const SIZE: usize = 4 * 1024 * 1024;
    let Some(world) = World::start() else {
        return;
    };
    let input = pseudo_random(SIZE);
    let file = world.fx.dir.path().join("input.bin");
    std::fs::write(&file, &input).expect("write input");
    let stdin = std::fs::File::open(&file).expect("open input");
    let started = Instant::now();
    let run = world.ssh("cat", Stdio::from(stdin));
    let took = started.elapsed();
    assert_eq!(run.status.code(), Some(0), "{}", world.logs(&run));
    assert_eq!(run.stdout.len(), SIZE, "{}", world.logs(&run));
    // Not assert_eq!: a failure would print 8 MiB.
    let first_difference = run.stdout.iter().zip(&input).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "the bytes came back changed");
    let stats = world.assert_wound_down(&run);
    // SSH's own framing and MACs come on top of the payload.
    assert!(stats.bytes_in > SIZE as u64, "{stats:?}");
    assert!(stats.bytes_out > SIZE as u64, "{stats:?}");
    eprintln!("4 MiB each way through ssh and sessionctl: {took:?}");
    drop(world.ssm.rt);
}

/// `len` bytes from a xorshift generator: incompressible enough that ssh's
/// compression (off by default anyway) cannot shrink them, and the same on
/// every run so a failure reproduces.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}
