//! A local credential endpoint (`session_aws::serve`): serves credentials
//! as the ECS container credentials endpoint and an IMDSv2-compatible one
//! on 127.0.0.1, then asks both the way an AWS SDK does. The credentials
//! here are AWS's documented example values from a small source written
//! below; a program would serve a session's with
//! `SessionCredentialsProvider` (as `sessionctl aws serve` does). No cloud
//! account or network beyond 127.0.0.1 is used.
//!
//! ```text
//! cargo run --example aws_credential_server --features aws-serve
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use session_sdk::aws::AwsCredentials;
use session_sdk::aws::serve::{CredentialServer, CredentialSource};
use session_sdk::{Clock, Secret, SystemClock};

/// Temporary credentials valid for an hour from each call; counts calls,
/// as a source that rotates would.
#[derive(Default)]
struct ExampleSource {
    calls: AtomicU32,
}

#[async_trait::async_trait]
impl CredentialSource for ExampleSource {
    async fn credentials(&self) -> session_sdk::Result<AwsCredentials> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(AwsCredentials {
            access_key_id: "ASIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned()),
            session_token: Some(Secret::new("example-session-token".to_owned())),
            expiration: Some(SystemClock.now() + Duration::from_secs(3600)),
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let source = std::sync::Arc::new(ExampleSource::default());
    let server = CredentialServer::builder(source.clone())
        .ecs()
        .imds()
        .role_name("example-role")
        // Reported by IMDS for the SDKs that read their region there.
        .region("eu-west-1")
        .build()?
        .start()
        .await?;
    let ecs = server.ecs_full_uri().ok_or("ECS is on")?;
    let imds = server.imds_endpoint().ok_or("IMDS is on")?;
    println!("ECS endpoint:  {ecs}");
    println!("IMDS endpoint: {imds}");
    // What a child process would get (the token's value is not printed).
    for (name, _) in server.environment() {
        println!("  sets {name}");
    }

    let http = reqwest::Client::new();
    // ECS: the SDK sends the token as the Authorization header.
    let token = server.authorization_token().expose().to_owned();
    let answer: serde_json::Value = http
        .get(&ecs)
        .header("Authorization", token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!(
        "ECS with the token: AccessKeyId {} until {}",
        answer["AccessKeyId"], answer["Expiration"]
    );
    let refused = http.get(&ecs).send().await?.status();
    println!("ECS without the token: {refused}");

    // IMDSv2: a session token first, then the role's credentials.
    let imds_token = http
        .put(format!("{imds}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let base = format!("{imds}/latest/meta-data/iam/security-credentials/");
    let role = http
        .get(&base)
        .header("X-aws-ec2-metadata-token", &imds_token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let answer: serde_json::Value = http
        .get(format!("{base}{role}"))
        .header("X-aws-ec2-metadata-token", &imds_token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!(
        "IMDSv2 role {role}: Code {}, AccessKeyId {}",
        answer["Code"], answer["AccessKeyId"]
    );
    let region = http
        .get(format!("{imds}/latest/meta-data/placement/region"))
        .header("X-aws-ec2-metadata-token", &imds_token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    println!("IMDSv2 region: {region}");
    let v1 = http.get(&base).send().await?.status();
    println!("IMDSv1 (no token): {v1}");

    server.shutdown().await?;
    println!(
        "the source was asked {} times (once per credential request)",
        source.calls.load(Ordering::Relaxed)
    );
    if refused != reqwest::StatusCode::UNAUTHORIZED || v1 != reqwest::StatusCode::UNAUTHORIZED {
        return Err("an unauthenticated request was not refused with 401".into());
    }
    Ok(())
}
