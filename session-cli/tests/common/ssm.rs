//! The SSM end of the `sessionctl connect` tests: session-testkit's fake
//! control plane and fake agent, the environment that points sessionctl at
//! them, and a loopback echo server for the agent to dial.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use session_core::SessionStatus;
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::ssm_agent::{AgentScenario, SsmAgentFake};

use super::Fixture;

/// The one instance the fake control plane knows in these tests.
pub(crate) const TARGET: &str = "i-0123456789abcdef0";

/// Adds `name`, an `AWS-StartSSHSession` session (standard-stream
/// forwarding, as ssh's `ProxyCommand` uses) to `port` on the target.
pub(crate) fn add_ssh_stream(fx: &Fixture, name: &str, port: u16) {
    fx.run(&[
        "add",
        "aws-ssm",
        name,
        "--target",
        TARGET,
        "--document",
        "AWS-StartSSHSession",
        "--parameter",
        &format!("portNumber={port}"),
    ])
    .ok();
}

/// A small multi-threaded runtime for the fakes, so they keep serving while
/// the test thread blocks on a child process.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The control plane and the agent fakes of a `connect` test, and the
/// environment that points sessionctl at them with the default chain.
pub(crate) struct Ssm {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) control: SsmControlFake,
    pub(crate) agent: SsmAgentFake,
}

impl Ssm {
    /// Both fakes, with [`TARGET`] registered, the agent playing `scenario`.
    pub(crate) fn start(scenario: AgentScenario) -> Self {
        let rt = runtime();
        let control = rt.block_on(SsmControlFake::start());
        control.add_target(TARGET);
        let agent = rt.block_on(SsmAgentFake::start(&control, scenario));
        Ssm { rt, control, agent }
    }

    /// The variables that make sessionctl's default credential chain sign
    /// for the fake control plane, and nothing else: the config and
    /// credentials files point at a path that does not exist, so a
    /// developer's own AWS setup cannot leak in.
    pub(crate) fn env(&self, fx: &Fixture) -> Vec<(&'static str, String)> {
        let none = fx.dir.path().join("none").display().to_string();
        vec![
            ("AWS_ENDPOINT_URL_SSM", self.control.endpoint()),
            ("AWS_ACCESS_KEY_ID", "AKIACONNECTTEST00000".into()),
            ("AWS_SECRET_ACCESS_KEY", "connect-test-secret".into()),
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_CONFIG_FILE", none.clone()),
            ("AWS_SHARED_CREDENTIALS_FILE", none),
        ]
    }

    /// The service's sessions, newest last.
    pub(crate) fn sessions(&self) -> Vec<session_testkit::fakes::ssm::SessionRecord> {
        self.control.sessions()
    }

    /// Waits until the fake agent has attached a data channel for the one
    /// session started; returns its id.
    #[cfg(unix)]
    #[track_caller]
    pub(crate) fn attached(&self) -> String {
        let start = Instant::now();
        loop {
            if let Some((id, _)) = self.agent.all_stats().into_iter().find(|(_, s)| s.attached) {
                return id;
            }
            assert!(
                start.elapsed() < super::connect::TIMEOUT,
                "no data channel attached"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An echo server on loopback, on a thread of its own.
pub(crate) fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut reader = stream.try_clone().expect("clone");
                let mut writer = stream;
                let _ = std::io::copy(&mut reader, &mut writer);
            });
        }
    });
    address
}

/// The stored status of the workspace session `name`.
#[track_caller]
pub(crate) fn status_of(fx: &Fixture, name: &str) -> SessionStatus {
    fx.stored()
        .into_iter()
        .find(|s| s.session_name == name)
        .expect("stored")
        .status()
}
