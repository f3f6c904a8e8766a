//! Starts the Redfish SessionService server on 127.0.0.1 with demo
//! accounts, writes its CA certificate to a file in a private temporary
//! folder (removed on Ctrl-C and SIGTERM) and prints how to reach it.
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
    let stopped = stop_signal()?;
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
    // The CA goes into a fresh private folder (mode 0700, random name, made
    // by `tempfile`), never to a predictable path in the shared temporary
    // folder, where someone could plant a symlink. Dropping it removes it.
    let ca_dir = match handle.ca_pem() {
        Some(ca) => {
            let dir = private_dir()?;
            let path = dir.path().join("ca.pem");
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, ca.as_bytes()))?;
            println!("CA certificate:  {}", path.display());
            Some((dir, path))
        }
        None => {
            println!("Plain HTTP (insecureHttp): put a TLS-terminating proxy in front.");
            None
        }
    };
    let cacert = ca_dir
        .as_ref()
        .map(|(_, p)| format!("--cacert {} ", p.display()))
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
    stopped.await;
    handle.shutdown().await;
    // Removes the CA file and its folder.
    drop(ca_dir);
    Ok(())
}

/// A new folder only this user can enter, in the temporary folder.
fn private_dir() -> std::io::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("session-redfish-ca-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    builder.tempdir()
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `kill` and
/// service managers send), so that both clean up. The handlers are
/// installed when this is called, not when the future is first awaited: a
/// signal arriving in between must not kill the process uncleaned.
#[cfg(unix)]
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
