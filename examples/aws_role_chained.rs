//! An AWS role assumed with an IAM-user session's credentials: starting the
//! chained session starts its parent first. Against any STS endpoint, e.g.
//! moto:
//!
//! ```sh
//! .cache/peers/venv/bin/moto_server -H 127.0.0.1 -p 5000 &   # installed by ./scripts/test
//! AWS_ENDPOINT_URL=http://127.0.0.1:5000 \
//! AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=example \
//! SESSION_EXAMPLE_ROLE_ARN=arn:aws:iam::123456789012:role/Admin \
//!   cargo run --example aws_role_chained --features aws
//! ```
//!
//! The role's credentials are checked with `sts:GetCallerIdentity`, then
//! published to a credentials file in a temporary directory.

use std::sync::Arc;

use session_sdk::aws::sink::SharedCredentialsFile;
use session_sdk::aws::{
    AwsClientConfig, AwsCredentials, ChainedRoleConfig, ChainedRoleProvider, IamUserProvider,
};
use session_sdk::{Error, InMemoryWorkspace, Secret, Session, SessionManager, SessionType};

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::invalid_input(name, "is not set"))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::storage(".", "temp dir", Some(e)))?;
    let sink = Arc::new(SharedCredentialsFile::with_paths(
        dir.path().join("credentials"),
        dir.path().join("config"),
    ));
    let client = AwsClientConfig::from_env()?;
    let manager = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .provider(Arc::new(IamUserProvider::new(client.clone(), sink.clone())))
        .provider(Arc::new(ChainedRoleProvider::new(client.clone(), sink)))
        .build()?;

    let user = manager
        .add(Session::new("example-user", SessionType::AwsIamUser)?.with_region("us-east-1"))
        .await?;
    AwsCredentials::store_long_term(
        manager.secrets().as_ref(),
        user.session_id,
        &env("AWS_ACCESS_KEY_ID")?,
        &Secret::new(env("AWS_SECRET_ACCESS_KEY")?),
    )
    .await?;
    let role_arn = env("SESSION_EXAMPLE_ROLE_ARN")
        .unwrap_or_else(|_| "arn:aws:iam::123456789012:role/Example".into());
    let mut role = ChainedRoleConfig::new(role_arn);
    role.role_session_name = Some("session-sdk-example".into());
    manager
        .add(
            Session::new("example-role", SessionType::AwsIamRoleChained)?
                .with_region("us-east-1")
                .with_parent(user.session_id)
                .with_config(&role)?,
        )
        .await?;

    let active = manager.start("example-role").await?;
    println!("started: {} until {:?}", active.label(), active.expiration);
    let creds = AwsCredentials::load_issued(manager.secrets().as_ref(), active.session_id)
        .await?
        .ok_or_else(|| Error::not_found("the role's credentials"))?;
    let identity = client
        .sts("us-east-1", Some(&creds))
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| Error::provider("aws-sts", active.label(), e.to_string()))?;
    println!("the role's identity: {}", identity.arn().unwrap_or("?"));
    println!(
        "profile [example-role] written to {}",
        dir.path().join("credentials").display()
    );
    manager.stop("example-role").await?;
    manager.stop("example-user").await?;
    println!("stopped both");
    Ok(())
}
