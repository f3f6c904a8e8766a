//! Starts the Redfish SessionService server on 127.0.0.1 with a demo
//! account, writes its CA certificate to a file and prints how to reach it.
//!
//! ```text
//! cargo run --example redfish_server -p session-redfish
//! ```
//!
//! Set `REDFISH_BIND` (e.g. `127.0.0.1:8443`) to choose the address.

use session_core::Secret;
use session_redfish::server::{RedfishServer, Role};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = RedfishServer::builder()
        .account("admin", Secret::new("admin-password"), Role::Administrator)
        .account("operator", Secret::new("operator-password"), Role::Operator)
        .account("reader", Secret::new("reader-password"), Role::ReadOnly);
    if let Ok(bind) = std::env::var("REDFISH_BIND") {
        builder = builder.bind(bind.parse()?);
    }
    let handle = builder.build()?.start().await?;
    let ca_path = std::env::temp_dir().join(format!(
        "session-redfish-ca-{}.pem",
        handle.local_addr().port()
    ));
    std::fs::write(&ca_path, handle.ca_pem().unwrap_or_default())?;
    println!("Redfish service: {}/redfish/v1/", handle.base_url());
    println!("CA certificate:  {}", ca_path.display());
    println!("Demo account:    admin / admin-password (Administrator)");
    println!(
        "Try: curl --cacert {} -i -X POST {}/redfish/v1/SessionService/Sessions \
         -H 'Content-Type: application/json' -d '{{\"UserName\":\"admin\",\"Password\":\"admin-password\"}}'",
        ca_path.display(),
        handle.base_url()
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    let _ = std::fs::remove_file(&ca_path);
    Ok(())
}
