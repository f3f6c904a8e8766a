//! Importing AWS profiles as sessions: plans the import of an AWS config
//! and credentials file (`AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`
//! if set, else a sample written here), applies it to an in-memory
//! workspace and secret store, and shows that a second plan adds nothing.
//! No cloud account or network is used.
//!
//! ```text
//! cargo run --example import_aws_config --features aws
//! ```

use session_sdk::aws::config_import::{AwsConfigImport, ProfileOutcome};
use session_sdk::{InMemorySecretStore, InMemoryWorkspace, WorkspaceRepository};

const SAMPLE_CONFIG: &str = "\
[profile base]
region = eu-west-1
mfa_serial = arn:aws:iam::111122223333:mfa/alice

[profile admin]
role_arn = arn:aws:iam::444455556666:role/Admin
source_profile = base
role_session_name = alice

[profile tool]
credential_process = /usr/local/bin/get-creds
";

const SAMPLE_CREDENTIALS: &str = "\
[base]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
";

fn read(var: &str, sample: &str) -> std::io::Result<String> {
    match std::env::var_os(var) {
        Some(path) => std::fs::read_to_string(path),
        None => Ok(sample.to_owned()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = read("AWS_CONFIG_FILE", SAMPLE_CONFIG)?;
    let credentials = read("AWS_SHARED_CREDENTIALS_FILE", SAMPLE_CREDENTIALS)?;
    let workspace = InMemoryWorkspace::new();
    let secrets = InMemorySecretStore::new();

    let plan = AwsConfigImport::plan(&config, &credentials, &[], &workspace.list().await?)?;
    for item in &plan.items {
        match &item.outcome {
            ProfileOutcome::Add {
                session, secrets, ..
            } => println!(
                "add {:<12} as {} ({} secret(s) to store)",
                item.profile,
                session.session_type,
                secrets.len()
            ),
            ProfileOutcome::NotImported(why) => println!("skip {:<11} {why}", item.profile),
            other => println!("{:<16} {other:?}", item.profile),
        }
    }
    let added = plan.apply(&workspace, &secrets).await?;
    println!("{} session(s) added", added.len());

    let again = AwsConfigImport::plan(&config, &credentials, &[], &workspace.list().await?)?;
    assert_eq!(again.to_add().count(), 0, "a second import adds nothing");
    println!("a second import would add nothing");
    Ok(())
}
