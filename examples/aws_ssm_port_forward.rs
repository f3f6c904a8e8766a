//! An AWS Systems Manager port-forwarding session: `connect` opens it (StartSession,
//! the data channel, a local listener), bytes go through the local port to
//! the target's port, `stop` terminates it.
//!
//! With no settings it runs against the SSM fakes of `session-testkit` on
//! 127.0.0.1 (a control plane and an agent written from the protocol
//! reference, forwarding to a local echo server), so no AWS account is
//! needed:
//!
//! ```sh
//! cargo run --example aws_ssm_port_forward --features aws-ssm
//! ```
//!
//! Against AWS, with the default credential chain, forwarding a local port
//! to port 22 of an instance (it connects once, prints what the port
//! answers, and stops):
//!
//! ```sh
//! SESSION_EXAMPLE_SSM_TARGET=i-0123456789abcdef0 SESSION_EXAMPLE_SSM_PORT=22 \
//!   AWS_REGION=eu-west-1 cargo run --example aws_ssm_port_forward --features aws-ssm
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use session_sdk::aws::AwsCredentials;
use session_sdk::aws::ssm::{SsmClientConfig, SsmConfig, SsmProvider};
use session_sdk::{Error, InMemoryWorkspace, Secret, Session, SessionManager, SessionType};
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::ssm_agent::{AgentScenario, SsmAgentFake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The fakes and the echo server the example talks to by default.
struct Local {
    control: SsmControlFake,
    _agent: SsmAgentFake,
}

const LOCAL_TARGET: &str = "i-0123456789abcdef0";

async fn local() -> std::io::Result<Local> {
    let echo = TcpListener::bind("127.0.0.1:0").await?;
    let echo_address = echo.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    let control = SsmControlFake::start().await;
    control.add_target(LOCAL_TARGET);
    let agent = SsmAgentFake::start(&control, AgentScenario::port_to(echo_address)).await;
    Ok(Local {
        control,
        _agent: agent,
    })
}

fn io_error(what: &str, error: std::io::Error) -> Error {
    Error::provider_caused_by("example", "aws_ssm_port_forward", what.to_owned(), error)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let real_target = std::env::var("SESSION_EXAMPLE_SSM_TARGET")
        .ok()
        .filter(|t| !t.is_empty());
    let (client, target, port, _local) = match real_target {
        Some(target) => {
            let port = std::env::var("SESSION_EXAMPLE_SSM_PORT")
                .unwrap_or_else(|_| "22".into())
                .parse::<u16>()
                .map_err(|e| Error::invalid_input("SESSION_EXAMPLE_SSM_PORT", e.to_string()))?;
            (SsmClientConfig::from_env()?, target, port, None)
        }
        None => {
            let local = local().await.map_err(|e| io_error("local fakes", e))?;
            let client = SsmClientConfig::builder()
                .endpoint_url(local.control.endpoint())
                .default_credentials(AwsCredentials {
                    access_key_id: "AKIAEXAMPLEFAKE00000".into(),
                    secret_access_key: Secret::new("example-only"),
                    session_token: None,
                    expiration: None,
                })
                .build()?;
            println!("using the local SSM fakes at {}", local.control.endpoint());
            (client, LOCAL_TARGET.to_owned(), 5432, Some(local))
        }
    };

    let manager = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .provider(Arc::new(SsmProvider::new(client)))
        .build()?;
    let session = manager
        .add(
            Session::new("example-forward", SessionType::AwsSsm)?
                .with_config(&SsmConfig::port_forward(&target, port))?,
        )
        .await?;
    let (session, handle) = manager.connect(&session.session_id.to_string()).await?;
    let address: SocketAddr = handle.addresses()[0];
    println!(
        "{} is {}; {target}:{port} is on {address}",
        session.session_name,
        session.status()
    );

    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| io_error("connect to the local port", e))?;
    stream
        .write_all(b"hello through SSM\n")
        .await
        .map_err(|e| io_error("write", e))?;
    let mut answer = vec![0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .map_err(|_| Error::Timeout {
            target: address.to_string(),
            after: Duration::from_secs(10),
        })?
        .map_err(|e| io_error("read", e))?;
    println!(
        "the port answered {read} bytes: {:?}",
        String::from_utf8_lossy(&answer[..read])
    );

    let stopped = manager.stop(&session.session_id.to_string()).await?;
    println!(
        "{} is {}; the connection ended: {:?}",
        stopped.session_name,
        stopped.status(),
        handle.end_reason()
    );
    Ok(())
}
