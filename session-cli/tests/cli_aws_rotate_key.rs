//! `sessionctl aws rotate-key` against moto's IAM with authentication on:
//! the key moto issued is replaced, the new one is stored and works, the
//! old one is refused from then on, and an active session is moved onto
//! the new key. botocore, signing with what sessionctl stored, is the
//! independent check.

#![cfg(feature = "aws")]

mod common;

use std::process::Command;

use common::*;
use session_aws::secret_names;
use session_core::{SecretKey, SecretStore, Session, SessionStatus};
use session_testkit::peers::moto::{ALLOW_ALL_POLICY, MotoServer};
use session_testkit::readers::botocore::Botocore;

/// The environment of every sessionctl call here: moto for IAM and STS,
/// no publishing.
fn aws(command: &mut Command, moto: &MotoServer) {
    command
        .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env_remove("AWS_ENDPOINT_URL_STS")
        .env_remove("AWS_ENDPOINT_URL_IAM")
        .args(["--aws-sink", "none"]);
}

fn stored_secret(fx: &Fixture, session: &Session, name: &str) -> String {
    let store = fx.store();
    block_on(async move {
        store
            .get(&SecretKey::new(session.session_id, name).expect("key"))
            .await
            .expect("get")
            .expect("stored")
            .expose()
            .to_owned()
    })
}

/// botocore's `GetCallerIdentity` signed with the key `(id, secret)`: the
/// ARN, or `None` when moto refuses the key.
fn caller_arn(botocore: &Botocore, moto: &MotoServer, id: &str, secret: &str) -> Option<String> {
    let out = botocore
        .script(
            "import boto3, json\n\
             print(json.dumps(boto3.client('sts', region_name='us-east-1').get_caller_identity()['Arn']))",
        )
        .endpoint_url(moto.endpoint_url())
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .run();
    if !out.success() {
        assert!(
            out.stderr.contains("InvalidClientTokenId"),
            "refused for the key, not something else: {}",
            out.stderr
        );
        return None;
    }
    Some(out.json())
}

#[test]
fn rotate_key_replaces_the_stored_key_and_moves_the_session_onto_it() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let Some(botocore) = Botocore::new() else {
        return;
    };
    let key = moto
        .seed_then_authenticate(|moto| moto.create_iam_user(&botocore, "dev", ALLOW_ALL_POLICY));
    let old_secret = key.secret_access_key.expose().to_owned();
    let fx = Fixture::new();
    let mut add = fx.command(&[
        "add",
        "aws-iam-user",
        "dev",
        "--access-key-id",
        &key.access_key_id,
    ]);
    add.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Fixture::run_with_stdin(add, old_secret.as_bytes()).ok();
    let mut start = fx.command(&["start", "dev"]);
    aws(&mut start, &moto);
    Run::from(start.output().expect("run")).ok();
    let before = fx.stored().remove(0);
    assert_eq!(before.status(), SessionStatus::Active);

    let mut rotate = fx.command(&["aws", "rotate-key", "dev"]);
    aws(&mut rotate, &moto);
    let out = Run::from(rotate.output().expect("run"));
    let text = out.ok().to_owned();

    let session = fx.stored().remove(0);
    let new_id = stored_secret(&fx, &session, secret_names::LONG_TERM_ACCESS_KEY_ID);
    let new_secret = stored_secret(&fx, &session, secret_names::LONG_TERM_SECRET_ACCESS_KEY);
    assert_ne!(new_id, key.access_key_id);
    assert_ne!(new_secret, old_secret);
    assert!(
        text.contains(&format!(
            "rotated the access key of session 'dev' ({}): {} replaced by {new_id}",
            session.session_id, key.access_key_id
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("deleted {}", key.access_key_id)),
        "{text}"
    );
    assert!(text.contains("onto the new key"), "{text}");
    for printed in [&out.stdout, &out.stderr] {
        assert!(!printed.contains(&new_secret) && !printed.contains(&old_secret));
    }
    // The session was rotated: a later expiry or revision than before.
    assert!(session.revision() > before.revision(), "{session:?}");

    // moto, asked by botocore: the stored key is dev's, the old one is gone.
    let arn = caller_arn(&botocore, &moto, &new_id, &new_secret).expect("the new key works");
    assert!(arn.ends_with(":user/dev"), "{arn}");
    assert_eq!(
        caller_arn(&botocore, &moto, &key.access_key_id, &old_secret),
        None,
        "the old key is deleted"
    );

    // Not an IAM user: refused by name, nothing called.
    let mut add_role = fx.command(&[
        "add",
        "aws-role-chained",
        "admin",
        "--parent",
        "dev",
        "--role-arn",
        "arn:aws:iam::123456789012:role/admin",
    ]);
    add_role.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Run::from(add_role.output().expect("run")).ok();
    let mut wrong = fx.command(&["aws", "rotate-key", "admin"]);
    aws(&mut wrong, &moto);
    let refused = Run::from(wrong.output().expect("run"));
    assert!(
        refused
            .one_line_error()
            .contains("not an awsIamUser session"),
        "{refused:#?}"
    );
}
