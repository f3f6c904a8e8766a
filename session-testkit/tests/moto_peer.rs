//! The moto test peer harness against the real peer: `MotoServer` starts,
//! resets, runs side by side and dies on drop, and turns authentication on
//! after seeding an IAM user; `Botocore` gets STS credentials from it, in a
//! clean, sandboxed environment.
//!
//! Every test is skipped loudly outside CI when the peers' venv is missing,
//! and fails in CI (see `session_testkit::peers`).

// In a module so that every test name contains `moto` (for
// `./scripts/test -p session-testkit moto`).
mod moto {
    use std::net::{Ipv4Addr, SocketAddr, TcpStream};
    use std::time::Duration;

    use serde_json::Value;
    use session_testkit::peers::moto::{
        ALLOW_ALL_POLICY, IAM_USER_SEED_CALLS, MotoAccessKey, MotoServer,
    };
    use session_testkit::readers::botocore::Botocore;

    /// Dummy credentials: moto does not check signatures by default.
    fn signed<'a>(
        botocore: &'a Botocore,
        moto: &MotoServer,
        script: &str,
    ) -> session_testkit::readers::botocore::BotocoreRun<'a> {
        botocore
            .script(script)
            .endpoint_url(moto.endpoint_url())
            .env("AWS_ACCESS_KEY_ID", "AKIDTESTING")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
            .env("AWS_DEFAULT_REGION", "us-east-1")
    }

    /// What moto answers a botocore call `call` (`"gci"`: GetCallerIdentity,
    /// or `"ar:<role arn>"`: AssumeRole) signed with these credentials: the
    /// caller's or assumed role's ARN, or the error code. The credentials
    /// travel in the environment, never on stdout.
    fn call_as(
        botocore: &Botocore,
        moto: &MotoServer,
        call: &str,
        key_id: &str,
        secret: &str,
        token: Option<&str>,
    ) -> String {
        let script = r#"
    import json, sys, boto3, botocore.exceptions
    sts = boto3.client("sts")
    try:
        if sys.argv[1] == "gci":
            print(json.dumps(sts.get_caller_identity()["Arn"]))
        else:
            ar = sts.assume_role(RoleArn=sys.argv[1][3:], RoleSessionName="peer-test")
            print(json.dumps(ar["AssumedRoleUser"]["Arn"]))
    except botocore.exceptions.ClientError as e:
        print(json.dumps(e.response["Error"]["Code"]))
    "#;
        let mut run = botocore
            .script(script)
            .arg(call)
            .endpoint_url(moto.endpoint_url())
            .env("AWS_ACCESS_KEY_ID", key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1");
        if let Some(token) = token {
            run = run.env("AWS_SESSION_TOKEN", token);
        }
        run.run().json()
    }

    /// `secret` with its last character changed.
    fn tampered(secret: &str) -> String {
        let mut s = secret.to_owned();
        let last = s.pop().expect("non-empty");
        s.push(if last == 'A' { 'B' } else { 'A' });
        s
    }

    fn gci(botocore: &Botocore, moto: &MotoServer, key: &MotoAccessKey, secret: &str) -> String {
        call_as(botocore, moto, "gci", &key.access_key_id, secret, None)
    }

    fn answers(port: u16) -> bool {
        TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            Duration::from_secs(1),
        )
        .is_ok()
    }

    #[test]
    fn server_starts_and_answers_the_probe() {
        let Some(moto) = MotoServer::start() else {
            return;
        };
        assert_ne!(moto.port(), 0);
        assert_eq!(
            moto.endpoint_url(),
            format!("http://127.0.0.1:{}", moto.port())
        );
        let probe = moto.request("GET", "/moto-api/data.json", b"").unwrap();
        assert_eq!(probe.status, 200, "{}", probe.text());
        assert!(
            serde_json::from_slice::<Value>(&probe.body).is_ok(),
            "{}",
            probe.text()
        );
        // The log is captured, and it is this server's.
        let log = moto.log();
        assert!(
            log.contains(&format!("Running on http://127.0.0.1:{}", moto.port())),
            "{log}"
        );
        moto.reset();
    }

    #[test]
    fn reset_wipes_the_state() {
        let Some(moto) = MotoServer::start() else {
            return;
        };
        let Some(botocore) = Botocore::new() else {
            return;
        };
        let create = r#"
    import json, boto3
    iam = boto3.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(trust))
    print(json.dumps([r["RoleName"] for r in iam.list_roles()["Roles"]]))
    "#;
        let list = r#"
    import json, boto3
    print(json.dumps([r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]]))
    "#;
        let roles: Vec<String> = signed(&botocore, &moto, create).run().json();
        assert_eq!(roles, ["r"]);
        let roles: Vec<String> = signed(&botocore, &moto, list).run().json();
        assert_eq!(roles, ["r"], "state is kept between calls");

        moto.reset();
        let roles: Vec<String> = signed(&botocore, &moto, list).run().json();
        assert!(roles.is_empty(), "reset left {roles:?}");
    }

    #[test]
    fn two_servers_run_side_by_side_on_different_ports() {
        let Some(a) = MotoServer::start() else {
            return;
        };
        let Some(b) = MotoServer::start() else {
            return;
        };
        assert_ne!(a.port(), b.port());
        assert_ne!(a.pid(), b.pid());
        for server in [&a, &b] {
            let probe = server.request("GET", "/moto-api/data.json", b"").unwrap();
            assert_eq!(probe.status, 200, "port {}", server.port());
        }
        drop(a);
        let probe = b.request("GET", "/moto-api/data.json", b"").unwrap();
        assert_eq!(
            probe.status, 200,
            "dropping one server must not stop the other"
        );
    }

    #[test]
    fn drop_kills_the_process() {
        let Some(moto) = MotoServer::start() else {
            return;
        };
        let (port, pid) = (moto.port(), moto.pid());
        assert!(answers(port));
        let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
        if cfg!(target_os = "linux") {
            assert!(proc_dir.exists());
        }
        let log_path = moto.log_path().to_owned();
        assert!(log_path.is_file());

        drop(moto);

        assert!(!answers(port), "port {port} still answers after drop");
        if cfg!(target_os = "linux") {
            // Killed and reaped: no zombie left either.
            assert!(!proc_dir.exists(), "process {pid} still exists after drop");
        }
        assert!(
            !log_path.exists(),
            "the temp dir is removed with the server"
        );
    }

    #[test]
    fn builder_env_reaches_the_server() {
        let Some(moto) = MotoServer::builder()
            .env("MOTO_ACCOUNT_ID", "111122223333")
            .start()
        else {
            return;
        };
        let Some(botocore) = Botocore::new() else {
            return;
        };
        let script = r#"
    import json, boto3
    print(json.dumps(boto3.client("sts").get_caller_identity()["Account"]))
    "#;
        let account: String = signed(&botocore, &moto, script).run().json();
        assert_eq!(account, "111122223333");
    }

    #[test]
    fn boto3_gets_sts_credentials_from_moto() {
        let Some(moto) = MotoServer::start() else {
            return;
        };
        let Some(botocore) = Botocore::new() else {
            return;
        };
        let script = r#"
    import json, boto3
    sts = boto3.client("sts")
    gst = sts.get_session_token()
    # RoleSessionName must be 2..=64 characters (botocore checks it client-side).
    ar = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/r", RoleSessionName="s1")
    print(json.dumps({
        "endpoint": sts.meta.endpoint_url,
        "gst": gst["Credentials"],
        "ar": ar["Credentials"],
        "ar_user": ar["AssumedRoleUser"],
    }, default=str))
    "#;
        let out: Value = signed(&botocore, &moto, script).run().json();

        assert_eq!(out["endpoint"], moto.endpoint_url());
        for creds in [&out["gst"], &out["ar"]] {
            for field in [
                "AccessKeyId",
                "SecretAccessKey",
                "SessionToken",
                "Expiration",
            ] {
                let value = creds[field].as_str().unwrap_or_default();
                assert!(!value.is_empty(), "{field} missing in {creds}");
            }
        }
        let ar_key = out["ar"]["AccessKeyId"].as_str().unwrap();
        assert!(ar_key.starts_with("ASIA"), "{ar_key}");
        assert_eq!(
            out["ar_user"]["Arn"],
            "arn:aws:sts::123456789012:assumed-role/r/s1"
        );

        // The calls went to this server (the werkzeug access log).
        let log = moto.log();
        assert!(
            log.matches("\"POST / HTTP/1.1\" 200").count() >= 2,
            "moto's log shows no STS calls:\n{log}"
        );
    }

    #[test]
    fn botocore_runs_in_a_clean_sandboxed_environment() {
        let Some(botocore) = Botocore::new() else {
            return;
        };
        let script = r#"
    import json, os
    print(json.dumps(dict(os.environ)))
    "#;
        let env: serde_json::Map<String, Value> = botocore.script(script).run().json();
        let home = botocore.home().to_str().unwrap();
        assert_eq!(env["HOME"], home);
        assert_eq!(
            env["AWS_SHARED_CREDENTIALS_FILE"],
            botocore.credentials_file().to_str().unwrap()
        );
        assert_eq!(
            env["AWS_CONFIG_FILE"],
            botocore.config_file().to_str().unwrap()
        );
        assert_eq!(env["AWS_EC2_METADATA_DISABLED"], "true");
        assert!(env.contains_key("PATH"));
        let aws: Vec<&String> = env.keys().filter(|k| k.starts_with("AWS_")).collect();
        assert_eq!(
            aws,
            [
                "AWS_CONFIG_FILE",
                "AWS_EC2_METADATA_DISABLED",
                "AWS_SHARED_CREDENTIALS_FILE"
            ],
            "no AWS_ENDPOINT_URL unless asked, nothing inherited"
        );
        // The test's own environment (cargo sets CARGO_* for tests) is not passed.
        assert!(
            !env.keys().any(|k| k.starts_with("CARGO")),
            "inherited: {:?}",
            env.keys().collect::<Vec<_>>()
        );

        // Per-run overrides: another HOME moves the default files with it.
        let other = tempfile::tempdir().unwrap();
        let env: serde_json::Map<String, Value> = botocore
            .script(script)
            .home(other.path())
            .endpoint_url("http://127.0.0.1:9")
            .env("AWS_PROFILE", "dev")
            .run()
            .json();
        let other_aws = other.path().join(".aws");
        assert_eq!(env["HOME"], other.path().to_str().unwrap());
        assert_eq!(
            env["AWS_SHARED_CREDENTIALS_FILE"],
            other_aws.join("credentials").to_str().unwrap()
        );
        assert_eq!(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:9");
        assert_eq!(env["AWS_PROFILE"], "dev");
    }

    #[test]
    fn botocore_reads_a_credentials_file_we_wrote() {
        let Some(botocore) = Botocore::new() else {
            return;
        };
        let file = botocore.credentials_file();
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n\n\
             [dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = s3cr3t\n\
             aws_session_token = tok\n",
        )
        .unwrap();
        let script = r#"
    import json, sys, boto3
    c = boto3.Session(profile_name=sys.argv[1]).get_credentials()
    f = c.get_frozen_credentials()
    print(json.dumps([c.method, f.access_key, f.secret_key, f.token]))
    "#;
        let got: Vec<Option<String>> = botocore.script(script).arg("dev").run().json();
        let want =
            ["shared-credentials-file", "AKIDDEV", "s3cr3t", "tok"].map(|s| Some(s.to_owned()));
        assert_eq!(got, want);
    }

    #[test]
    fn a_failing_script_reports_its_status_and_traceback() {
        let Some(botocore) = Botocore::new() else {
            return;
        };
        let out = botocore
            .script("import sys\nprint('partial')\nraise SystemExit(3)")
            .run();
        assert!(!out.success());
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout.trim(), "partial");

        let out = botocore.script("raise ValueError('boom')").run();
        assert!(!out.success());
        assert!(out.stderr.contains("ValueError: boom"), "{}", out.stderr);
    }

    /// With authentication on, only the seeded key with its own secret is
    /// accepted; a wrong secret, an unknown key and a role without a
    /// permission policy are refused with AWS's codes. Run with
    /// authentication off, each refusal below is (wrongly) a success.
    #[test]
    fn authentication_accepts_only_the_seeded_key() {
        let (Some(moto), Some(botocore)) = (MotoServer::start(), Botocore::new()) else {
            return;
        };
        let (key, no_policy, with_policy) = moto.seed_then_authenticate(|moto| {
            (
                moto.create_iam_user(&botocore, "peer-user", ALLOW_ALL_POLICY),
                moto.create_role(&botocore, "NoPolicy", None),
                moto.create_role(&botocore, "WithPolicy", Some(ALLOW_ALL_POLICY)),
            )
        });
        assert!(
            key.access_key_id.starts_with("AKIA"),
            "{}",
            key.access_key_id
        );
        assert_eq!(key.arn, "arn:aws:iam::123456789012:user/peer-user");
        assert!(
            !format!("{key:?}").contains(key.secret_access_key.expose()),
            "Debug hides the secret"
        );
        let secret = key.secret_access_key.expose();
        assert_eq!(gci(&botocore, &moto, &key, secret), key.arn);
        assert_eq!(
            gci(&botocore, &moto, &key, &tampered(secret)),
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            call_as(&botocore, &moto, "gci", "AKIDUNKNOWN", "x", None),
            "InvalidClientTokenId"
        );
        // The user's policy allows AssumeRole; the assumed role's own
        // permission policy decides whether it may assume another.
        let assume = |role: &str| format!("ar:{role}");
        assert_eq!(
            call_as(
                &botocore,
                &moto,
                &assume(&no_policy),
                &key.access_key_id,
                secret,
                None
            ),
            "arn:aws:sts::123456789012:assumed-role/NoPolicy/peer-test"
        );
        assert!(with_policy.ends_with(":role/WithPolicy"), "{with_policy}");

        // reset wipes the key but keeps authentication on: now refused.
        moto.reset();
        assert_eq!(gci(&botocore, &moto, &key, secret), "InvalidClientTokenId");
        moto.authentication_off();
        assert_eq!(
            call_as(&botocore, &moto, "gci", "AKIDUNKNOWN", "x", None),
            "arn:aws:sts::123456789012:user/moto",
            "authentication off: any key"
        );
    }

    /// The builder's count of unauthenticated calls: seeding one IAM user
    /// uses them all, and the next call must be signed with its key.
    #[test]
    fn builder_authentication_leaves_exactly_the_seeding_calls_free() {
        let (Some(moto), Some(botocore)) = (
            MotoServer::builder()
                .authentication(IAM_USER_SEED_CALLS)
                .start(),
            Botocore::new(),
        ) else {
            return;
        };
        let key = moto.create_iam_user(&botocore, "counted", ALLOW_ALL_POLICY);
        assert_eq!(
            call_as(&botocore, &moto, "gci", "AKIDUNKNOWN", "x", None),
            "InvalidClientTokenId",
            "no free call left"
        );
        assert_eq!(
            gci(&botocore, &moto, &key, key.secret_access_key.expose()),
            key.arn
        );
    }
}
