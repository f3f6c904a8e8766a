//! Starts the Redfish SessionService server on 127.0.0.1 with demo
//! accounts, writes its CA certificate to a file and prints how to reach it.
//!
//! ```text
//! cargo run --example redfish_server -p session-redfish
//! cargo run --example redfish_server -p session-redfish -- --config redfish.toml
//! ```
//!
//! With `--config FILE` (or `REDFISH_CONFIG=FILE`) every setting, accounts
//! included, comes from that TOML file (format: the docs of
//! `session_redfish::server::RedfishServerConfig`). Without it: three demo
//! accounts, and `REDFISH_BIND` (e.g. `127.0.0.1:8443`) chooses the address.

use std::path::PathBuf;

use session_core::Secret;
use session_redfish::server::{RedfishServer, RedfishServerBuilder, Role};

/// `--config FILE`, `--config=FILE`, or `$REDFISH_CONFIG`.
fn config_path() -> Result<Option<PathBuf>, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let from_args = match args.as_slice() {
        [] => None,
        [flag, path] if flag == "--config" => Some(path.as_str()),
        [arg] => arg.strip_prefix("--config="),
        _ => None,
    };
    match from_args {
        Some(path) if !path.is_empty() => Ok(Some(PathBuf::from(path))),
        _ if args.is_empty() => Ok(std::env::var_os("REDFISH_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)),
        _ => Err(format!(
            "unexpected arguments {args:?}; usage: redfish_server [--config FILE]"
        )),
    }
}

#[tokio::main]
async fn main() {
    // `Display`, not the `Debug` a returned error would print: the
    // configuration errors are written to be read.
    if let Err(e) = run().await {
        eprintln!("redfish_server: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = config_path()?;
    let builder = match &config {
        Some(path) => RedfishServerBuilder::from_config_file(path)?,
        None => {
            let mut builder = RedfishServer::builder()
                .account("admin", Secret::new("admin-password"), Role::Administrator)
                .account("operator", Secret::new("operator-password"), Role::Operator)
                .account("reader", Secret::new("reader-password"), Role::ReadOnly);
            if let Ok(bind) = std::env::var("REDFISH_BIND") {
                builder = builder.bind(bind.parse()?);
            }
            builder
        }
    };
    let handle = builder.build()?.start().await?;
    println!("Redfish service: {}/redfish/v1/", handle.base_url());
    let ca_path = match handle.ca_pem() {
        Some(ca) => {
            let path = std::env::temp_dir().join(format!(
                "session-redfish-ca-{}.pem",
                handle.local_addr().port()
            ));
            std::fs::write(&path, ca)?;
            println!("CA certificate:  {}", path.display());
            Some(path)
        }
        None => {
            println!("Plain HTTP (insecureHttp): put a TLS-terminating proxy in front.");
            None
        }
    };
    let cacert = ca_path
        .as_ref()
        .map(|p| format!("--cacert {} ", p.display()))
        .unwrap_or_default();
    match &config {
        Some(path) => println!("Accounts:        from {}", path.display()),
        None => {
            println!("Demo account:    admin / admin-password (Administrator)");
            println!(
                "Try: curl {cacert}-i -X POST {}/redfish/v1/SessionService/Sessions \
                 -H 'Content-Type: application/json' \
                 -d '{{\"UserName\":\"admin\",\"Password\":\"admin-password\"}}'",
                handle.base_url()
            );
        }
    }
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    if let Some(path) = ca_path {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
