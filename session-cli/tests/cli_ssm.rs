//! `sessionctl add aws-ssm` and `sessionctl ssm sessions` against the SSM
//! fake control plane (checked with botocore) and, for `--as`, moto.
#![cfg(feature = "aws-ssm")]

mod common;

use std::process::Command;

#[cfg(unix)]
use common::ssm::{Ssm, add_ssh_stream, echo_server, status_of};
use common::ssm::{TARGET, runtime};
use common::*;
use session_aws::AwsCredentials;
use session_aws::ssm::{SsmApi, SsmClientConfig, SsmConfig};
use session_core::{Secret, SessionType};
use session_testkit::fakes::SsmControlFake;
#[cfg(unix)]
use session_testkit::fakes::ssm_agent::{AgentScenario, ShellEcho};
use session_testkit::peers::moto::{ALLOW_ALL_POLICY, MotoServer};
use session_testkit::readers::botocore::Botocore;

async fn api(fake: &SsmControlFake) -> SsmApi {
    let credentials = AwsCredentials {
        access_key_id: "AKIASEEDER0000000000".into(),
        secret_access_key: Secret::new("seeder"),
        session_token: None,
        expiration: None,
    };
    SsmClientConfig::builder()
        .endpoint_url(fake.endpoint())
        .build()
        .expect("config")
        .api("eu-west-1", Some(&credentials), "seeder")
        .await
}

#[test]
fn add_aws_ssm_validates_and_stores_the_settings() {
    let fx = Fixture::new();
    let bad = fx.run(&["add", "aws-ssm", "box", "--target", "web-1"]);
    assert!(bad.one_line_error().contains("target"), "{bad:#?}");
    let bad = fx.run(&[
        "add",
        "aws-ssm",
        "db",
        "--target",
        TARGET,
        "--parameter",
        "portNumber=http",
    ]);
    assert!(bad.one_line_error().contains("portNumber"), "{bad:#?}");
    fx.insert(vec![session("az", SessionType::Azure)]);
    let bad = fx.run(&["add", "aws-ssm", "db", "--target", TARGET, "--parent", "az"]);
    assert!(
        bad.one_line_error().contains("not AWS credentials"),
        "{bad:#?}"
    );
    assert!(
        fx.stored()
            .iter()
            .all(|s| s.session_type != SessionType::AwsSsm)
    );

    fx.run(&[
        "add",
        "aws-ssm",
        "db",
        "--target",
        TARGET,
        "--document",
        "AWS-StartPortForwardingSession",
        "--parameter",
        "portNumber=5432",
        "--parameter",
        "localPortNumber=15432",
        "--reason",
        "maintenance",
        "--region",
        "eu-west-1",
    ])
    .ok();
    let stored = fx
        .stored()
        .into_iter()
        .find(|s| s.session_name == "db")
        .expect("stored");
    assert_eq!(stored.session_type, SessionType::AwsSsm);
    assert_eq!(stored.region.as_deref(), Some("eu-west-1"));
    let config: SsmConfig = stored.config.get().expect("an SsmConfig");
    assert_eq!(config.target, TARGET);
    assert_eq!(config.local_port(), Some(15432));
    assert_eq!(config.parameters["portNumber"], ["5432"]);
    assert_eq!(config.reason.as_deref(), Some("maintenance"));
}

#[test]
fn ssm_sessions_lists_with_the_default_chain() {
    let rt = runtime();
    let fake = rt.block_on(SsmControlFake::start());
    fake.add_target(TARGET);
    fake.add_target("i-0123456789abcdef1");
    let ids: Vec<String> = rt.block_on(async {
        let api = api(&fake).await;
        let mut ids = Vec::new();
        for target in [TARGET, TARGET, "i-0123456789abcdef1"] {
            ids.push(
                api.start_session(&SsmConfig::shell(target))
                    .await
                    .unwrap()
                    .session_id,
            );
        }
        api.terminate_session(&ids[0]).await.unwrap();
        ids
    });
    let fx = Fixture::new();
    let ssm = |args: &[&str]| {
        let mut command = fx.command(&[&["ssm", "sessions"], args].concat());
        command
            .env("AWS_ENDPOINT_URL_SSM", fake.endpoint())
            .env("AWS_ACCESS_KEY_ID", "AKIADEFAULTCHAIN0000")
            .env("AWS_SECRET_ACCESS_KEY", "default-chain-secret")
            .env("AWS_REGION", "eu-central-1")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", fx.dir.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", fx.dir.path().join("none"));
        Run::from(command.output().expect("run"))
    };
    let table = ssm(&[]);
    let text = table.ok();
    assert!(text.starts_with("SESSION"), "{text}");
    assert!(text.contains(&ids[1]) && text.contains(&ids[2]), "{text}");
    assert!(
        !text.contains(&ids[0]),
        "the terminated one is history: {text}"
    );
    let call = fake.calls_of("DescribeSessions").pop().expect("a call");
    assert_eq!(call.access_key_id.as_deref(), Some("AKIADEFAULTCHAIN0000"));
    assert_eq!(call.region.as_deref(), Some("eu-central-1"));

    let history = json(ssm(&["--state", "history", "--json"]).ok());
    assert_eq!(history.as_array().expect("array").len(), 1);
    assert_eq!(history[0]["sessionId"], ids[0].as_str());
    assert_eq!(history[0]["status"], "Terminated");

    let one = json(ssm(&["--target", "i-0123456789abcdef1", "--json"]).ok());
    assert_eq!(one.as_array().expect("array").len(), 1);
    assert_eq!(one[0]["target"], "i-0123456789abcdef1");

    fake.fail_next_call_with("DescribeSessions", 400, "AccessDeniedException");
    let denied = ssm(&[]);
    let line = denied.one_line_error();
    assert!(line.contains("permission denied"), "{line}");
    drop(fake);
}

/// `--as dev`: the IAM-user session is started against moto first, and
/// DescribeSessions is signed with the credentials it issued.
#[test]
fn ssm_sessions_as_a_workspace_session_uses_its_issued_credentials() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let Some(botocore) = Botocore::new() else {
        return;
    };
    let key = moto
        .seed_then_authenticate(|moto| moto.create_iam_user(&botocore, "dev", ALLOW_ALL_POLICY));
    let rt = runtime();
    let fake = rt.block_on(SsmControlFake::start());
    let fx = Fixture::new();
    let mut add = fx.command(&[
        "add",
        "aws-iam-user",
        "dev",
        "--access-key-id",
        &key.access_key_id,
        "--region",
        "ap-south-1",
    ]);
    add.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Fixture::run_with_stdin(add, key.secret_access_key.expose().as_bytes()).ok();

    let aws_dir = fx.dir.path().join("aws");
    let mut list = fx.command(&["ssm", "sessions", "--as", "dev"]);
    env(&mut list, &moto, &fake, &aws_dir);
    let out = Run::from(list.output().expect("run"));
    assert_eq!(out.ok(), "no sessions\n");

    let dev = fx
        .stored()
        .into_iter()
        .find(|s| s.session_name == "dev")
        .expect("dev");
    assert_eq!(
        dev.status(),
        session_core::SessionStatus::Active,
        "started by --as"
    );
    let issued = rt
        .block_on(AwsCredentials::load_issued(&fx.store(), dev.session_id))
        .expect("store")
        .expect("issued credentials");
    let call = fake.calls_of("DescribeSessions").pop().expect("a call");
    assert_eq!(
        call.access_key_id.as_deref(),
        Some(issued.access_key_id.as_str())
    );
    assert_eq!(
        call.region.as_deref(),
        Some("ap-south-1"),
        "the session's region"
    );
    drop(fake);
}

fn env(command: &mut Command, moto: &MotoServer, fake: &SsmControlFake, aws_dir: &std::path::Path) {
    command
        .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env("AWS_SHARED_CREDENTIALS_FILE", aws_dir.join("credentials"))
        .env("AWS_CONFIG_FILE", aws_dir.join("config"))
        .env("AWS_ENDPOINT_URL_STS", moto.endpoint_url())
        .env("AWS_ENDPOINT_URL_SSM", fake.endpoint())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("SESSIONCTL_AWS_SINK");
}

/// Adds `name`, a port forward to port 5432 of the target.
#[cfg(unix)]
fn add_port_forward(fx: &Fixture, name: &str) {
    fx.run(&[
        "add",
        "aws-ssm",
        name,
        "--target",
        TARGET,
        "--document",
        "AWS-StartPortForwardingSession",
        "--parameter",
        "portNumber=5432",
    ])
    .ok();
}

/// `connect` of a port-forwarding session: StartSession with the default
/// chain, the data channel in smux mode, three connections at once echoed
/// through the printed address, then Ctrl-C: Flag TerminateSession on the
/// channel, the TerminateSession API, and the session `inactive`.
#[cfg(unix)]
#[test]
fn connect_forwards_a_port_through_the_agent_and_ctrl_c_terminates_it() {
    use common::connect::{Connect, echo_through, is_closed};
    let ssm = Ssm::start(AgentScenario::port_to(echo_server()));
    let fx = Fixture::new();
    add_port_forward(&fx, "db");
    let mut connect = Connect::spawn_with(&fx, &["db"], &ssm.env(&fx), false);
    let address = connect.address();
    let id = ssm.attached();
    let threads: Vec<_> = (0..3u8)
        .map(|n| std::thread::spawn(move || echo_through(address, &vec![n; 64 * 1024])))
        .collect();
    for thread in threads {
        thread.join().expect("echoed");
    }
    assert_eq!(status_of(&fx, "db"), session_core::SessionStatus::Active);
    let stats = ssm.agent.stats(&id).expect("stats");
    assert_eq!(stats.smux_streams.len(), 3, "{stats:?}");
    let record = ssm.sessions().pop().expect("a session");
    assert_eq!(record.access_key_id, "AKIACONNECTTEST00000");
    assert_eq!(record.region, "eu-west-1");
    assert_eq!(record.parameters["portNumber"], ["5432"]);

    connect.signal(rustix::process::Signal::INT);
    let status = connect.wait();
    assert!(status.success(), "{status:?}: {}", connect.stderr());
    assert!(
        connect.stderr().contains("stopped db"),
        "{}",
        connect.stderr()
    );
    assert_eq!(status_of(&fx, "db"), session_core::SessionStatus::Inactive);
    let stats = ssm.agent.stats(&id).expect("stats");
    assert!(
        stats.flags_received.contains(&2),
        "TerminateSession flag: {stats:?}"
    );
    let terminate = ssm.control.calls_of("TerminateSession");
    assert!(
        terminate
            .iter()
            .any(|c| c.input["SessionId"] == id.as_str()),
        "{terminate:?}"
    );
    assert!(is_closed(address), "the listener is closed");
    drop(ssm.rt);
}

/// A KMS-encrypted port forward through sessionctl, with moto as KMS for
/// both sides: sessionctl's GenerateDataKey goes to `AWS_ENDPOINT_URL_KMS`
/// with the session's identity and the exact encryption context, the fake
/// agent decrypts the key with moto, and the forward carries bytes both
/// ways encrypted.
#[cfg(unix)]
#[test]
fn connect_of_a_kms_encrypted_session_uses_the_sessions_kms() {
    use common::connect::{Connect, echo_through};
    use session_testkit::fakes::ssm_agent::{KmsScenario, MotoKms};
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let kms = MotoKms::new(moto.endpoint_url());
    let rt = runtime();
    let key = rt.block_on(kms.create_key());
    let mut scenario = AgentScenario::port_to(echo_server());
    scenario.kms = Some(KmsScenario::new(key, std::sync::Arc::new(kms)));
    let ssm = Ssm::start(scenario);
    let fx = Fixture::new();
    add_port_forward(&fx, "db");
    // MotoKms creates its keys in us-east-1: the session's region must be
    // the key's, as in AWS.
    let mut env: Vec<_> = ssm
        .env(&fx)
        .into_iter()
        .filter(|(name, _)| *name != "AWS_REGION")
        .collect();
    env.push(("AWS_REGION", "us-east-1".into()));
    env.push(("AWS_ENDPOINT_URL_KMS", moto.endpoint_url()));
    let mut connect = Connect::spawn_with(&fx, &["db"], &env, false);
    let address = connect.address();
    let id = ssm.attached();
    echo_through(address, &[7; 256 * 1024]);
    let stats = ssm.agent.stats(&id).expect("stats");
    assert!(
        stats.kms && stats.challenge_passed,
        "{}",
        stats.handshake_error.unwrap_or_default()
    );
    let context = stats.kms_context.expect("a context");
    assert_eq!(context["aws:ssm:SessionId"], id);
    assert_eq!(context["aws:ssm:TargetId"], TARGET);
    connect.signal(rustix::process::Signal::INT);
    let status = connect.wait();
    assert!(status.success(), "{status:?}: {}", connect.stderr());
    drop(ssm.rt);
}

/// A laptop-style pause: sessionctl is stopped (SIGSTOP) while the service
/// closes its websocket with 1000, as it does about hourly. Continued, it
/// resumes the same remote session (ResumeSession, same ClientId), says
/// "reconnecting… / resumed after" on stderr, and the forward works again
/// on the same address.
#[cfg(unix)]
#[test]
fn connect_resumes_after_a_pause_and_a_close_from_the_service_and_says_so() {
    use common::connect::{Connect, echo_through};
    use rustix::process::Signal;
    let ssm = Ssm::start(AgentScenario::port_to(echo_server()));
    let fx = Fixture::new();
    add_port_forward(&fx, "db");
    let mut connect = Connect::spawn_with(&fx, &["db"], &ssm.env(&fx), false);
    let address = connect.address();
    let id = ssm.attached();
    echo_through(address, &[1; 32 * 1024]);

    connect.signal(Signal::STOP);
    assert!(ssm.agent.close_socket(&id, 1000, "going away"));
    std::thread::sleep(std::time::Duration::from_secs(2));
    connect.signal(Signal::CONT);
    let stderr = connect.stderr_until("resumed after");
    assert!(stderr.contains("db: reconnecting…"), "{stderr}");
    echo_through(address, &[2; 32 * 1024]);

    let stats = ssm.agent.stats(&id).expect("stats");
    assert_eq!(stats.redials_accepted, 1, "{stats:?}");
    let clients: std::collections::BTreeSet<_> =
        stats.opens.iter().map(|o| o.client_id.clone()).collect();
    assert_eq!(clients.len(), 1, "the same ClientId: {stats:?}");
    assert_eq!(ssm.control.calls("ResumeSession"), 1);
    assert_eq!(ssm.sessions().len(), 1, "no second session was started");
    assert_eq!(status_of(&fx, "db"), session_core::SessionStatus::Active);

    connect.signal(Signal::INT);
    let status = connect.wait();
    assert!(status.success(), "{status:?}: {}", connect.stderr());
    drop(ssm.rt);
}

/// `connect NAME -- CMD` of a port forward: the command reaches the
/// target through `$SESSIONCTL_CONNECT_PORT`, and its exit status is
/// sessionctl's; the session is stopped after it.
#[cfg(unix)]
#[test]
fn connect_runs_a_command_through_the_port_forward() {
    use common::connect::Connect;
    let ssm = Ssm::start(AgentScenario::port_to(echo_server()));
    let fx = Fixture::new();
    add_port_forward(&fx, "db");
    let script = "exec 3<>/dev/tcp/127.0.0.1/$SESSIONCTL_CONNECT_PORT; \
                  printf ping-through-ssm >&3; head -c 16 <&3; echo; exit 7";
    let mut connect = Connect::spawn_with(
        &fx,
        &["db", "--", "bash", "-c", script],
        &ssm.env(&fx),
        false,
    );
    assert_eq!(connect.line(), "ping-through-ssm");
    let status = connect.wait();
    assert_eq!(status.code(), Some(7), "{}", connect.stderr());
    assert_eq!(status_of(&fx, "db"), session_core::SessionStatus::Inactive);
    assert_eq!(
        ssm.sessions().pop().expect("one").status,
        session_testkit::fakes::ssm::SessionStatus::Terminated
    );
    drop(ssm.rt);
}

/// `connect` of a shell: standard input reaches the remote shell and its
/// output comes back (the fake upper-cases it), SIGINT is forwarded as the
/// Ctrl-C byte instead of ending sessionctl, and the remote exit code
/// (an ExitCode payload, then `channel_closed`) is sessionctl's status.
#[cfg(unix)]
#[test]
fn connect_runs_a_shell_forwards_ctrl_c_and_exits_with_the_remote_status() {
    use common::connect::Connect;
    let ssm = Ssm::start(AgentScenario {
        shell_echo: ShellEcho::Uppercase,
        ..AgentScenario::default()
    });
    let fx = Fixture::new();
    fx.run(&["add", "aws-ssm", "box", "--target", TARGET]).ok();
    let mut connect = Connect::spawn_with(&fx, &["box"], &ssm.env(&fx), true);
    let id = ssm.attached();
    connect.write_stdin(b"hello shell\n");
    assert_eq!(connect.line(), "HELLO SHELL");
    connect.signal(rustix::process::Signal::INT);
    let start = std::time::Instant::now();
    while !ssm
        .agent
        .stats(&id)
        .expect("stats")
        .shell_input
        .ends_with(b"\x03")
    {
        assert!(
            start.elapsed() < common::connect::TIMEOUT,
            "no Ctrl-C byte: {}",
            connect.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    connect.write_stdin(b"after\n");
    assert_eq!(connect.line(), "\u{3}AFTER");
    assert_eq!(status_of(&fx, "box"), session_core::SessionStatus::Active);
    let stats = ssm.agent.stats(&id).expect("stats");
    assert_eq!(stats.shell_input, b"hello shell\n\x03after\n");

    assert!(ssm.agent.send_stream(&id, 12, b"3".to_vec()));
    assert!(ssm.agent.close_channel(&id, ""));
    let status = connect.wait();
    assert_eq!(status.code(), Some(3), "{}", connect.stderr());
    assert_eq!(status_of(&fx, "box"), session_core::SessionStatus::Inactive);
    drop(ssm.rt);
}

/// Starts `connect` of an `AWS-StartSSHSession` session (standard-stream
/// forwarding, as ssh's `ProxyCommand` runs it) to an echo server, checks
/// that its bytes come back on standard output, and returns it with the
/// agent's session id.
#[cfg(unix)]
fn connect_ssh_stream(fx: &Fixture, ssm: &Ssm) -> (common::connect::Connect, String) {
    let echo = echo_server();
    add_ssh_stream(fx, "ssh", echo.port());
    let mut connect = common::connect::Connect::spawn_with(fx, &["ssh"], &ssm.env(fx), true);
    let id = ssm.attached();
    connect.write_stdin(b"SSH-2.0-OpenSSH_9.2\r\n");
    assert_eq!(connect.line(), "SSH-2.0-OpenSSH_9.2");
    let stats = ssm.agent.stats(&id).expect("stats");
    assert_eq!(stats.mux, Some(false), "the agent forwards one raw stream");
    assert_eq!(stats.target_connections, 1);
    assert!(
        stats.sizes.is_empty(),
        "no terminal size: {:?}",
        stats.sizes
    );
    (connect, id)
}

/// Ctrl-C stops a byte stream (it is not handed on as a byte, which would
/// corrupt an SSH connection): exit 0, the session inactive, the agent
/// got exactly the bytes of standard input. Before, the Ctrl-C byte was
/// sent and sessionctl went on.
#[cfg(unix)]
#[test]
fn connect_of_an_ssh_stream_forwards_standard_streams_and_ctrl_c_stops_it() {
    let ssm = Ssm::start(AgentScenario::default());
    let fx = Fixture::new();
    let (mut connect, id) = connect_ssh_stream(&fx, &ssm);
    connect.signal(rustix::process::Signal::INT);
    let status = connect.wait();
    assert_eq!(status.code(), Some(0), "{}", connect.stderr());
    let stats = ssm.agent.stats(&id).expect("stats");
    assert_eq!(stats.bytes_in, 21, "only standard input's bytes: {stats:?}");
    assert_eq!(status_of(&fx, "ssh"), session_core::SessionStatus::Inactive);
    drop(ssm.rt);
}

/// ssh ends its `ProxyCommand` by closing its standard input, and with
/// SIGHUP: either stops the session (exit 0, inactive).
#[cfg(unix)]
#[test]
fn connect_of_an_ssh_stream_stops_at_the_end_of_input_or_on_sighup() {
    let ssm = Ssm::start(AgentScenario::default());
    let fx = Fixture::new();
    let (mut connect, _) = connect_ssh_stream(&fx, &ssm);
    connect.close_stdin();
    let status = connect.wait();
    assert_eq!(status.code(), Some(0), "{}", connect.stderr());
    assert_eq!(status_of(&fx, "ssh"), session_core::SessionStatus::Inactive);

    // The same session again, ended by SIGHUP this time.
    let mut connect = common::connect::Connect::spawn_with(&fx, &["ssh"], &ssm.env(&fx), true);
    connect.write_stdin(b"again\n");
    assert_eq!(connect.line(), "again");
    connect.signal(rustix::process::Signal::HUP);
    let status = connect.wait();
    assert_eq!(status.code(), Some(0), "{}", connect.stderr());
    assert_eq!(status_of(&fx, "ssh"), session_core::SessionStatus::Inactive);
    drop(ssm.rt);
}

/// 16 MiB written to `connect`'s standard input of a byte stream while its
/// echo is read from standard output: all of it comes back, in order. The
/// copy hung at times (found with ssh copying 4 MiB both ways on a loaded
/// machine) while one loop awaited a write to the remote side and so
/// stopped copying its output; SIGHUP went unseen meanwhile.
#[cfg(unix)]
#[test]
fn connect_of_an_ssh_stream_carries_16_mib_both_ways_at_once() {
    use std::io::{Read, Write};
    use std::process::Stdio;
    const TOTAL: usize = 16 << 20;
    let ssm = Ssm::start(AgentScenario::default());
    let fx = Fixture::new();
    let echo = echo_server();
    add_ssh_stream(&fx, "ssh", echo.port());
    let mut command = fx.command(&["connect", "ssh"]);
    command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    for (name, value) in ssm.env(&fx) {
        command.env(name, value);
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn sessionctl connect");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let data: Vec<u8> = (0..TOTAL).map(|i| (i % 253) as u8).collect();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        for chunk in sent.chunks(64 * 1024) {
            stdin.write_all(chunk).expect("write to sessionctl");
        }
        // Kept open: the end of input would stop the session.
        stdin
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut back = vec![0u8; TOTAL];
        let read = stdout.read_exact(&mut back);
        let _ = done_tx.send((read.is_ok(), back));
    });
    let Ok((complete, back)) = done_rx.recv_timeout(std::time::Duration::from_secs(90)) else {
        let stats = ssm.agent.all_stats();
        let _ = child.kill();
        panic!("the echo stalled; agent: {stats:?}");
    };
    assert!(complete, "standard output ended early");
    assert!(back == data, "echoed intact and in order");
    let stdin = writer.join().expect("writer");
    drop(stdin);
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "exited"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert_eq!(status_of(&fx, "ssh"), session_core::SessionStatus::Inactive);
    drop(ssm.rt);
}

/// An `AWS-StartSSHSession` stream to a port nobody listens on: the agent
/// says it could not connect, and sessionctl says so and exits 1 at once
/// (before, it logged the flag at debug level and ssh waited for a
/// greeting until its own time-out); the session is stopped.
#[cfg(unix)]
#[test]
fn connect_of_an_ssh_stream_to_a_closed_port_fails_naming_it() {
    let ssm = Ssm::start(AgentScenario::default());
    let fx = Fixture::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    add_ssh_stream(&fx, "ssh", port);
    let mut connect = common::connect::Connect::spawn_with(&fx, &["ssh"], &ssm.env(&fx), true);
    ssm.attached();
    connect.write_stdin(b"SSH-2.0-OpenSSH_9.2\r\n");
    let status = connect.wait();
    assert_eq!(status.code(), Some(1), "{}", connect.stderr());
    assert!(
        connect
            .stderr()
            .contains("the agent could not connect to the remote port"),
        "{}",
        connect.stderr()
    );
    assert_eq!(status_of(&fx, "ssh"), session_core::SessionStatus::Inactive);
    drop(ssm.rt);
}

/// `add aws-ssm db --parent dev`: `connect db` starts the IAM-user session
/// `dev` against moto first, and StartSession and TerminateSession are
/// signed with the credentials it issued, in its region.
#[cfg(unix)]
#[test]
fn connect_signs_with_the_parent_sessions_issued_credentials() {
    use common::connect::{Connect, echo_through};
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let Some(botocore) = Botocore::new() else {
        return;
    };
    let key = moto
        .seed_then_authenticate(|moto| moto.create_iam_user(&botocore, "dev", ALLOW_ALL_POLICY));
    let ssm = Ssm::start(AgentScenario::port_to(echo_server()));
    let fx = Fixture::new();
    let mut add = fx.command(&[
        "add",
        "aws-iam-user",
        "dev",
        "--access-key-id",
        &key.access_key_id,
        "--region",
        "ap-south-1",
    ]);
    add.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Fixture::run_with_stdin(add, key.secret_access_key.expose().as_bytes()).ok();
    fx.run(&[
        "add",
        "aws-ssm",
        "db",
        "--target",
        TARGET,
        "--document",
        "AWS-StartPortForwardingSession",
        "--parameter",
        "portNumber=5432",
        "--parent",
        "dev",
    ])
    .ok();
    let aws_dir = fx.dir.path().join("aws");
    let env = vec![
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            aws_dir.join("credentials").display().to_string(),
        ),
        (
            "AWS_CONFIG_FILE",
            aws_dir.join("config").display().to_string(),
        ),
        ("AWS_ENDPOINT_URL_STS", moto.endpoint_url().to_string()),
        ("AWS_ENDPOINT_URL_SSM", ssm.control.endpoint()),
    ];
    let mut connect = Connect::spawn_with(&fx, &["db"], &env, false);
    let address = connect.address();
    echo_through(address, b"through the parent's identity");

    let dev = fx
        .stored()
        .into_iter()
        .find(|s| s.session_name == "dev")
        .expect("dev");
    assert_eq!(dev.status(), session_core::SessionStatus::Active);
    let issued = ssm
        .rt
        .block_on(AwsCredentials::load_issued(&fx.store(), dev.session_id))
        .expect("store")
        .expect("issued credentials");
    assert_ne!(
        issued.access_key_id, key.access_key_id,
        "issued, not the long-term key"
    );
    let record = ssm.sessions().pop().expect("a session");
    assert_eq!(record.access_key_id, issued.access_key_id);
    assert_eq!(record.region, "ap-south-1");

    connect.signal(rustix::process::Signal::INT);
    assert!(connect.wait().success(), "{}", connect.stderr());
    let terminate = ssm.control.calls_of("TerminateSession");
    assert!(
        terminate
            .iter()
            .any(|c| c.access_key_id.as_deref() == Some(issued.access_key_id.as_str())),
        "{terminate:?}"
    );
    drop(ssm.rt);
}

/// `connect` of a shell on a terminal (a pseudo-terminal run by
/// `tests/pty_driver.py`): raw mode while it runs, the size sent at start
/// and again after SIGWINCH, and the terminal's attributes restored when
/// it exits with the remote status.
#[cfg(unix)]
#[test]
fn connect_of_a_shell_on_a_terminal_sends_its_size_and_restores_it() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let ssm = Ssm::start(AgentScenario::default());
    let fx = Fixture::new();
    fx.run(&["add", "aws-ssm", "box", "--target", TARGET]).ok();
    let mut sessionctl = fx.command(&["connect", "box"]);
    for (name, value) in ssm.env(&fx) {
        sessionctl.env(name, value);
    }
    sessionctl.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pty_driver.py");
    let mut python = Command::new("python3");
    python
        .arg(driver)
        .arg(sessionctl.get_program())
        .args(sessionctl.get_args())
        .env_clear()
        .envs(
            sessionctl
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut driver = python.spawn().expect("python3 runs the pty driver");
    let mut requests = driver.stdin.take().expect("stdin");
    let mut answers = BufReader::new(driver.stdout.take().expect("stdout")).lines();
    let mut ask = |request: &str| {
        if !request.is_empty() {
            writeln!(requests, "{request}").expect("request");
        }
        answers.next().expect("an answer").expect("a line")
    };
    assert!(ask("").starts_with("spawned"));
    let id = ssm.attached();
    let sizes = |want: (u32, u32)| {
        let start = std::time::Instant::now();
        loop {
            let sizes = ssm.agent.stats(&id).expect("stats").sizes;
            if sizes.contains(&want) {
                return sizes;
            }
            assert!(
                start.elapsed() < common::connect::TIMEOUT,
                "no size {want:?}: {sizes:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    assert_eq!(sizes((100, 30)), [(100, 30)], "the size at start, once");
    assert_eq!(ask("attrs"), "raw");
    assert_eq!(ask("resize 120 40"), "resized");
    assert_eq!(sizes((120, 40)), [(100, 30), (120, 40)]);

    assert!(ssm.agent.send_stream(&id, 12, b"5".to_vec()));
    assert!(ssm.agent.close_channel(&id, ""));
    assert_eq!(ask("wait"), "exit 5");
    assert_eq!(ask(""), "restored");
    let _ = driver.wait();
    assert_eq!(status_of(&fx, "box"), session_core::SessionStatus::Inactive);
    drop(ssm.rt);
}
