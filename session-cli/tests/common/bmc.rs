//! The Redfish end of the `sessionctl` tests: the crate's embedded server
//! on 127.0.0.1 as a BMC, and a workspace that trusts its CA.

use session_core::Secret;
use session_redfish::server::{RedfishServer, RedfishServerHandle, Role};

use super::{Fixture, PASSPHRASE, Run};

/// The `admin` password of [`Bmc::start`].
pub(crate) const BMC_PASSWORD: &str = "bmc-password-canary-42";

/// The crate's embedded Redfish server with one `admin` account, and a
/// workspace whose sessions trust its CA. The server stops on drop.
pub(crate) struct Bmc {
    rt: tokio::runtime::Runtime,
    server: Option<RedfishServerHandle>,
    pub(crate) fx: Fixture,
    pub(crate) ca: std::path::PathBuf,
}

impl Bmc {
    pub(crate) fn start() -> Self {
        Self::with_password(BMC_PASSWORD)
    }

    /// A server whose `admin` password is `password`.
    pub(crate) fn with_password(password: &str) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt.block_on(async {
            RedfishServer::builder()
                .account("admin", Secret::new(password), Role::Administrator)
                .build()
                .expect("server")
                .start()
                .await
                .expect("start")
        });
        let fx = Fixture::new();
        let ca = fx.dir.path().join("bmc-ca.pem");
        std::fs::write(&ca, server.ca_pem().expect("CA")).expect("write CA");
        Self {
            rt,
            server: Some(server),
            fx,
            ca,
        }
    }

    /// `add redfish NAME` for `admin`, with `password` on stdin.
    pub(crate) fn add(&self, name: &str, password: &str) -> Run {
        let ca = self.ca.to_str().expect("utf-8");
        self.add_with(name, password, &["--ca-file", ca])
    }

    /// `add redfish NAME --endpoint <this server> --username admin EXTRA…`,
    /// with `password` on stdin.
    pub(crate) fn add_with(&self, name: &str, password: &str, extra: &[&str]) -> Run {
        let server = self.server.as_ref().expect("running");
        let endpoint = server.base_url().trim_end_matches('/');
        let mut args = vec![
            "add",
            "redfish",
            name,
            "--endpoint",
            endpoint,
            "--username",
            "admin",
        ];
        args.extend_from_slice(extra);
        let mut command = self.fx.command(&args);
        command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
        Fixture::run_with_stdin(command, format!("{password}\n").as_bytes())
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }
}
