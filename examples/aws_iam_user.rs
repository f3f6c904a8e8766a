//! An AWS IAM-user session: store a long-term key, start (GetSessionToken),
//! rotate, stop. Against any STS endpoint, e.g. moto:
//!
//! ```sh
//! .cache/peers/venv/bin/moto_server -H 127.0.0.1 -p 5000 &   # installed by ./scripts/test
//! AWS_ENDPOINT_URL=http://127.0.0.1:5000 \
//! AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=example \
//!   cargo run --example aws_iam_user --features aws
//! ```
//!
//! Without `AWS_ENDPOINT_URL` it calls the real STS with the key you give.
//! The credentials are published to a credentials file in a temporary
//! directory (printed), never to your `~/.aws`.

use std::sync::Arc;

use session_sdk::aws::sink::SharedCredentialsFile;
use session_sdk::aws::{AwsClientConfig, AwsCredentials, IamUserConfig, IamUserProvider};
use session_sdk::{Error, InMemoryWorkspace, Secret, Session, SessionManager, SessionType};

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::invalid_input(name, "set it to the IAM user's long-term key"))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::storage(".", "temp dir", Some(e)))?;
    let sink = SharedCredentialsFile::with_paths(
        dir.path().join("credentials"),
        dir.path().join("config"),
    );
    let provider = IamUserProvider::new(AwsClientConfig::from_env()?, Arc::new(sink));
    let manager = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .provider(Arc::new(provider))
        .build()?;

    let session = manager
        .add(
            Session::new("example-user", SessionType::AwsIamUser)?
                .with_region("us-east-1")
                .with_config(&IamUserConfig::default().with_duration_seconds(3600))?,
        )
        .await?;
    AwsCredentials::store_long_term(
        manager.secrets().as_ref(),
        session.session_id,
        &env("AWS_ACCESS_KEY_ID")?,
        &Secret::new(env("AWS_SECRET_ACCESS_KEY")?),
    )
    .await?;

    let active = manager.start("example-user").await?;
    println!("started: {} until {:?}", active.label(), active.expiration);
    println!(
        "profile [example-user] written to {}",
        dir.path().join("credentials").display()
    );
    let rotated = manager.rotate("example-user").await?;
    println!("rotated: until {:?}", rotated.expiration);
    let stopped = manager.stop("example-user").await?;
    println!("stopped: {} is {}", stopped.label(), stopped.status());
    Ok(())
}
