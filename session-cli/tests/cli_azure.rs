//! End-to-end tests of `sessionctl` with Azure (Entra ID) sessions (cargo feature
//! `azure`, on by default). Each test runs the built binary against a
//! workspace in a temporary directory (see `common`).

#![cfg(feature = "azure")]

mod common;

use std::process::Stdio;

use common::*;

use session_testkit::peers::oidc::OidcProvider;

/// add (client secret from stdin), `azure env`, `azure exec` (with the
/// other identities' variables removed, nesting refused), stop; against
/// oidc-provider on loopback. The client secret never shows.
#[test]
fn add_env_exec_stop_an_azure_session() {
    let Some(peer) = OidcProvider::start() else {
        return;
    };
    let fx = Fixture::new();
    let mut add = fx.command(&[
        "add",
        "azure",
        "app",
        "--kind",
        "client-secret",
        "--tenant-id",
        peer.tenant(),
        "--client-id",
        peer.confidential_client_id(),
        "--subscription-id",
        "00000000-0000-0000-0000-0000000000aa",
        "--authority-host",
        &peer.authority_host(),
        "--insecure-loopback-authority",
    ]);
    add.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    let added = Fixture::run_with_stdin(add, format!("{}\n", peer.client_secret()).as_bytes());
    assert!(added.ok().starts_with("added session 'app'"), "{added:#?}");

    let env = fx.run_unlocked(&["azure", "env", "app"]);
    let out = env.ok();
    assert!(
        out.contains(&format!("export AZURE_TENANT_ID='{}'", peer.tenant())),
        "{out}"
    );
    assert!(
        out.contains("export AZURE_SUBSCRIPTION_ID='00000000-0000-0000-0000-0000000000aa'"),
        "{out}"
    );
    assert!(out.contains("export ARM_CLIENT_ID="), "{out}");
    assert!(
        out.contains("export AZURE_ACCESS_TOKEN='ey"),
        "a JWT: {out}"
    );
    assert!(
        out.contains("export AZURE_ACCESS_TOKEN_EXPIRES_ON="),
        "{out}"
    );
    let shown = fx.run(&["show", "app"]);
    assert!(shown.ok().contains("active"), "{shown:#?}");

    let mut exec = fx.command(&[
            "azure",
            "exec",
            "app",
            "--",
            "sh",
            "-c",
            "test -n \"$AZURE_ACCESS_TOKEN\" && test -z \"$AZURE_CLIENT_SECRET\" && echo \"ok $SESSIONCTL_AZURE_SESSION\"",
        ]);
    exec.env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env("AZURE_CLIENT_SECRET", "from-the-outer-shell");
    let ran = Run::from(exec.output().expect("run"));
    assert_eq!(ran.ok().trim(), "ok app", "{ran:#?}");

    let mut nested = fx.command(&["azure", "exec", "app", "--", "true"]);
    nested
        .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env("SESSIONCTL_AZURE_SESSION", "outer");
    let nested = Run::from(nested.output().expect("run"));
    assert!(nested.one_line_error().contains("nesting"), "{nested:#?}");

    assert_eq!(fx.run_unlocked(&["stop", "app"]).code, Some(0));
    for run in [&added, &env, &ran, &nested] {
        assert!(
            !run.stdout.contains(peer.client_secret())
                && !run.stderr.contains(peer.client_secret()),
            "the client secret leaked: {run:#?}"
        );
    }
    let workspace = std::fs::read_to_string(fx.workspace()).expect("workspace");
    assert!(!workspace.contains(peer.client_secret()));
    assert!(!workspace.contains("AZURE_ACCESS_TOKEN"));
}

/// `add azure --azure-cli` (the CLI's client id by default), then a
/// device-code `start` whose prompt the test reads from standard error
/// and approves: the subscription and token land in
/// `$AZURE_CONFIG_DIR`; `stop` removes them. A service principal is
/// refused with the reason.
#[cfg(feature = "azure-cli")]
#[test]
fn an_azure_cli_session_writes_and_removes_the_cli_files() {
    use session_azure::AZURE_CLI_CLIENT_ID;
    use session_testkit::peers::oidc::approve_device_code;
    use std::io::{BufRead, BufReader};

    let Some(peer) = OidcProvider::builder()
        .public_client(AZURE_CLI_CLIENT_ID)
        .resource("https://management.core.windows.net/")
        .start()
    else {
        return;
    };
    let fx = Fixture::new();
    let az_dir = fx.dir.path().join("az");
    let sub = "00000000-0000-0000-0000-0000000000cc";
    let refused = fx.run(&[
        "add",
        "azure",
        "sp",
        "--azure-cli",
        "--kind",
        "client-secret",
        "--tenant-id",
        peer.tenant(),
        "--subscription-id",
        sub,
    ]);
    assert!(
        refused.one_line_error().contains("for user sign-ins"),
        "{refused:#?}"
    );
    let added = fx.run_unlocked(&[
        "add",
        "azure",
        "dev",
        "--azure-cli",
        "--azure-cli-cloud",
        "AzureCloud",
        "--tenant-id",
        peer.tenant(),
        "--subscription-id",
        sub,
        "--authority-host",
        &peer.authority_host(),
        "--insecure-loopback-authority",
    ]);
    assert!(added.ok().starts_with("added session 'dev'"), "{added:#?}");
    let shown = fx.run(&["show", "dev", "--json"]);
    assert!(shown.ok().contains(AZURE_CLI_CLIENT_ID), "{shown:#?}");

    let mut start = fx.command(&["start", "dev"]);
    start
        .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env("AZURE_CONFIG_DIR", &az_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = start.spawn().expect("spawn sessionctl start");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut prompt = String::new();
    while !prompt.contains("enter the code") {
        prompt.clear();
        assert!(
            stderr.read_line(&mut prompt).unwrap() > 0,
            "no device prompt"
        );
    }
    // "To sign in, open URI and enter the code CODE."
    let uri = prompt
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap()
        .to_owned();
    let code = prompt
        .trim()
        .trim_end_matches('.')
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(approve_device_code(
            (uri.as_str(), code.as_str()),
            "carol@contoso.com",
        ))
        .expect("approve");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let output = child.wait_with_output().expect("start ends");
    assert!(output.status.success(), "{rest}");
    assert!(rest.contains("Waiting for the sign-in"), "{rest}");

    let profile = std::fs::read_to_string(az_dir.join("azureProfile.json")).unwrap();
    let profile = json(profile.trim_start_matches('\u{feff}'));
    assert_eq!(profile["subscriptions"][0]["id"], sub);
    assert_eq!(profile["subscriptions"][0]["isDefault"], true);
    assert_eq!(
        profile["subscriptions"][0]["user"]["name"],
        "carol@contoso.com"
    );
    let cache = json(&std::fs::read_to_string(az_dir.join("msal_token_cache.json")).unwrap());
    assert_eq!(cache["AccessToken"].as_object().unwrap().len(), 1);
    assert_eq!(
        cache["RefreshToken"],
        json("{}"),
        "the refresh token stays in the store"
    );

    let mut stop = fx.command(&["stop", "dev"]);
    stop.env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env_remove("AZURE_CONFIG_DIR");
    let stopped = Run::from(stop.output().expect("run"));
    assert_eq!(stopped.code, Some(0), "{stopped:#?}");
    let profile = std::fs::read_to_string(az_dir.join("azureProfile.json")).unwrap();
    assert_eq!(
        json(profile.trim_start_matches('\u{feff}'))["subscriptions"],
        json("[]")
    );
    let cache = json(&std::fs::read_to_string(az_dir.join("msal_token_cache.json")).unwrap());
    assert_eq!(cache["AccessToken"], json("{}"));
    assert_eq!(cache["Account"], json("{}"));
}
