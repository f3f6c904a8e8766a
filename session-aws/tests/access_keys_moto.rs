//! `access_keys::AccessKeyRotation` against moto's IAM with authentication
//! on: every call must be signed with a key moto issued, so a deleted key
//! is refused from then on. botocore, signing with the keys we stored,
//! reads the user's keys back from moto.
#![cfg(feature = "iam")]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{caller_identity, moto_with_authentication};
use session_aws::access_keys::{
    AccessKeyRotation, OldKey, OldKeyOutcome, PENDING_ACCESS_KEY_ID, PENDING_SECRET_ACCESS_KEY,
};
use session_aws::{AwsClientConfig, AwsCredentials, secret_names};
use session_core::{
    Error, InMemorySecretStore, Result, Secret, SecretKey, SecretStore, Session, SessionId,
    SessionType,
};
use session_testkit::peers::moto::{MotoAccessKey, MotoServer};
use session_testkit::readers::botocore::Botocore;

/// A rotation against `moto`, without waits: moto's IAM is consistent at
/// once.
fn rotation(moto: &MotoServer, old_key: OldKey) -> AccessKeyRotation {
    AccessKeyRotation::builder()
        .sts(
            AwsClientConfig::builder()
                .endpoint_url(moto.endpoint_url())
                .max_attempts(1)
                .build()
                .expect("sts"),
        )
        .iam_endpoint_url(moto.endpoint_url())
        .verify_timeout(Duration::from_secs(2))
        .verify_interval(Duration::from_millis(200))
        .old_key(old_key)
        .build()
        .expect("rotation")
}

/// The IAM user session `dev` with moto's key stored.
async fn user_session(store: &dyn SecretStore, key: &MotoAccessKey) -> Session {
    let session = Session::new("dev", SessionType::AwsIamUser).expect("session");
    AwsCredentials::store_long_term(
        store,
        session.session_id,
        &key.access_key_id,
        &key.secret_access_key,
    )
    .await
    .expect("store");
    session
}

async fn stored(store: &dyn SecretStore, session: &Session) -> AwsCredentials {
    AwsCredentials::load_long_term(store, session.session_id)
        .await
        .expect("load")
        .expect("a stored key")
}

/// The user's keys as botocore reads them from moto (`ListAccessKeys`
/// signed with `signer`): `(id, status)` pairs.
fn listed_by_botocore(moto: &MotoServer, signer: &AwsCredentials) -> Vec<(String, String)> {
    let botocore = Botocore::new().expect("botocore (moto is running)");
    botocore
        .script(
            "import boto3, json\n\
             iam = boto3.client('iam', region_name='us-east-1')\n\
             keys = iam.list_access_keys(UserName='dev')['AccessKeyMetadata']\n\
             print(json.dumps(sorted([k['AccessKeyId'], k['Status']] for k in keys)))",
        )
        .endpoint_url(moto.endpoint_url())
        .env("AWS_ACCESS_KEY_ID", &signer.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", signer.secret_access_key.expose())
        .run()
        .json()
}

#[tokio::test]
async fn rotation_stores_a_working_key_and_deletes_the_old_one() {
    let Some((moto, key)) = moto_with_authentication(|_, _| {}) else {
        return;
    };
    let store = InMemorySecretStore::new();
    let session = user_session(&store, &key).await;
    let old = stored(&store, &session).await;

    let report = rotation(&moto, OldKey::Delete)
        .rotate(&store, &session, None)
        .await
        .expect("rotate");

    let new = stored(&store, &session).await;
    assert_ne!(new.access_key_id, old.access_key_id);
    assert_eq!(report.old_access_key_id, old.access_key_id);
    assert_eq!(report.new_access_key_id, new.access_key_id);
    assert_eq!(report.old_key, OldKeyOutcome::Deleted);
    assert!(!report.resumed_pending);
    assert!(
        report.user_arn.ends_with(":user/dev"),
        "{}",
        report.user_arn
    );
    assert_ne!(
        new.secret_access_key.expose(),
        old.secret_access_key.expose()
    );
    // The report and its Debug hold no secret.
    let shown = format!("{report:?}");
    assert!(!shown.contains(new.secret_access_key.expose()), "{shown}");

    // moto accepts the new key for the same user and refuses the old one.
    let identity = caller_identity(&moto, &new)
        .await
        .expect("the new key works");
    assert_eq!(identity.arn(), Some(report.user_arn.as_str()));
    let refused = caller_identity(&moto, &old)
        .await
        .expect_err("old key deleted");
    assert_eq!(refused, "403 InvalidClientTokenId");
    // botocore sees one key, the new one.
    assert_eq!(
        listed_by_botocore(&moto, &new),
        vec![(new.access_key_id.clone(), "Active".to_owned())]
    );
    // No pending copy is left behind.
    let names = store.names(session.session_id).await.expect("names");
    assert_eq!(
        names,
        vec![
            secret_names::LONG_TERM_ACCESS_KEY_ID.to_owned(),
            secret_names::LONG_TERM_SECRET_ACCESS_KEY.to_owned()
        ]
    );
}

#[tokio::test]
async fn deactivate_keeps_the_old_key_inactive() {
    let Some((moto, key)) = moto_with_authentication(|_, _| {}) else {
        return;
    };
    let store = InMemorySecretStore::new();
    let session = user_session(&store, &key).await;
    let report = rotation(&moto, OldKey::Deactivate)
        .rotate(&store, &session, None)
        .await
        .expect("rotate");
    assert_eq!(report.old_key, OldKeyOutcome::Deactivated);
    let new = stored(&store, &session).await;
    let mut expected = vec![
        (key.access_key_id.clone(), "Inactive".to_owned()),
        (new.access_key_id.clone(), "Active".to_owned()),
    ];
    expected.sort();
    assert_eq!(listed_by_botocore(&moto, &new), expected);
}

#[tokio::test]
async fn a_user_with_two_keys_is_stopped_before_anything_changes() {
    let second = Arc::new(Mutex::new(String::new()));
    let seen = second.clone();
    let Some((moto, key)) = moto_with_authentication(move |moto, botocore| {
        let id: String = botocore
            .script(
                "import boto3, json\n\
                 iam = boto3.client('iam', region_name='us-east-1')\n\
                 print(json.dumps(iam.create_access_key(UserName='dev')['AccessKey']['AccessKeyId']))",
            )
            .endpoint_url(moto.endpoint_url())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .run()
            .json();
        *seen.lock().unwrap() = id;
    }) else {
        return;
    };
    let second = second.lock().unwrap().clone();
    let store = InMemorySecretStore::new();
    let session = user_session(&store, &key).await;
    let before = stored(&store, &session).await;

    let err = rotation(&moto, OldKey::Delete)
        .rotate(&store, &session, None)
        .await
        .expect_err("two keys already");
    let text = err.to_string();
    assert!(text.contains("two access keys"), "{text}");
    assert!(text.contains(&second), "names the other key: {text}");
    assert!(!err.is_retryable());

    let after = stored(&store, &session).await;
    assert_eq!(after.access_key_id, before.access_key_id);
    let mut expected = vec![
        (key.access_key_id.clone(), "Active".to_owned()),
        (second, "Active".to_owned()),
    ];
    expected.sort();
    assert_eq!(
        listed_by_botocore(&moto, &before),
        expected,
        "no key created"
    );
}

/// A secret store that refuses to store the given names (a full disk, a
/// locked keychain) and otherwise keeps secrets in memory.
#[derive(Debug)]
struct RefusingStore {
    inner: InMemorySecretStore,
    refused: HashSet<&'static str>,
}

#[async_trait::async_trait]
impl SecretStore for RefusingStore {
    fn backend(&self) -> &'static str {
        "refusing"
    }
    async fn get(&self, key: &SecretKey) -> Result<Option<Secret>> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &SecretKey, value: &Secret) -> Result<()> {
        if self.refused.contains(key.name()) {
            return Err(Error::SecretStore {
                message: format!("refusing to store {}", key.name()),
                source: None,
            });
        }
        self.inner.put(key, value).await
    }
    async fn delete(&self, key: &SecretKey) -> Result<bool> {
        self.inner.delete(key).await
    }
    async fn names(&self, session: SessionId) -> Result<Vec<String>> {
        self.inner.names(session).await
    }
    async fn delete_session(&self, session: SessionId) -> Result<usize> {
        self.inner.delete_session(session).await
    }
}

/// A store that cannot keep the new key (the pending copy; the stored
/// key's secret; its id, after the new secret was written): the new key is
/// deleted from IAM again and the old one stays stored, whole, and
/// working.
#[tokio::test]
async fn a_key_that_cannot_be_stored_is_deleted_again() {
    let Some((moto, key)) = moto_with_authentication(|_, _| {}) else {
        return;
    };
    for refused in [
        PENDING_SECRET_ACCESS_KEY,
        secret_names::LONG_TERM_SECRET_ACCESS_KEY,
        secret_names::LONG_TERM_ACCESS_KEY_ID,
    ] {
        let store = RefusingStore {
            inner: InMemorySecretStore::new(),
            refused: HashSet::new(),
        };
        let session = user_session(&store, &key).await;
        let store = RefusingStore {
            refused: HashSet::from([refused]),
            ..store
        };
        let err = rotation(&moto, OldKey::Delete)
            .rotate(&store, &session, None)
            .await
            .expect_err("cannot store");
        let text = err.to_string();
        assert_eq!(err.category(), "secret_store", "{refused}: {text}");
        assert!(
            text.contains("was deleted again") && text.contains("unchanged"),
            "{refused}: {text}"
        );
        let after = stored(&store, &session).await;
        assert_eq!(after.access_key_id, key.access_key_id, "{refused}");
        assert_eq!(
            after.secret_access_key.expose(),
            key.secret_access_key.expose(),
            "{refused}"
        );
        caller_identity(&moto, &after)
            .await
            .expect("the old key still works");
        assert_eq!(
            listed_by_botocore(&moto, &after),
            vec![(key.access_key_id.clone(), "Active".to_owned())],
            "{refused}: the new key is gone from IAM"
        );
        assert!(
            store
                .get(&SecretKey::new(session.session_id, PENDING_ACCESS_KEY_ID).unwrap())
                .await
                .unwrap()
                .is_none(),
            "{refused}: no pending copy left"
        );
    }
}

/// A rotation that died after creating and keeping its key (the pending
/// copy) is finished by the next run: the pending key is stored and the
/// old one deleted, and no third key is created.
#[tokio::test]
async fn an_interrupted_rotation_is_finished_by_the_next() {
    let Some((moto, key)) = moto_with_authentication(|_, _| {}) else {
        return;
    };
    let store = InMemorySecretStore::new();
    let session = user_session(&store, &key).await;
    let old = stored(&store, &session).await;
    // What the interrupted run had done: CreateAccessKey, then the pending
    // copy.
    let botocore = Botocore::new().expect("botocore");
    let created: (String, String) = botocore
        .script(
            "import boto3, json\n\
             iam = boto3.client('iam', region_name='us-east-1')\n\
             k = iam.create_access_key()['AccessKey']\n\
             print(json.dumps([k['AccessKeyId'], k['SecretAccessKey']]))",
        )
        .endpoint_url(moto.endpoint_url())
        .env("AWS_ACCESS_KEY_ID", &old.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", old.secret_access_key.expose())
        .run()
        .json();
    for (name, value) in [
        (PENDING_SECRET_ACCESS_KEY, created.1.clone()),
        (PENDING_ACCESS_KEY_ID, created.0.clone()),
    ] {
        store
            .put(
                &SecretKey::new(session.session_id, name).unwrap(),
                &Secret::new(value),
            )
            .await
            .unwrap();
    }

    let report = rotation(&moto, OldKey::Delete)
        .rotate(&store, &session, None)
        .await
        .expect("rotate");
    assert!(report.resumed_pending);
    assert_eq!(report.new_access_key_id, created.0);
    assert_eq!(report.old_access_key_id, old.access_key_id);
    assert_eq!(report.old_key, OldKeyOutcome::Deleted);
    let new = stored(&store, &session).await;
    assert_eq!(new.access_key_id, created.0);
    assert_eq!(
        listed_by_botocore(&moto, &new),
        vec![(created.0.clone(), "Active".to_owned())]
    );
    assert_eq!(store.names(session.session_id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn only_iam_user_sessions_are_rotated() {
    let store = InMemorySecretStore::new();
    let session = Session::new("role", SessionType::AwsIamRoleChained).expect("session");
    let err = AccessKeyRotation::builder()
        .build()
        .unwrap()
        .rotate(&store, &session, None)
        .await
        .expect_err("not an IAM user");
    assert_eq!(err.category(), "invalid_input");
    assert!(err.to_string().contains("awsIamUser"), "{err}");

    let user = Session::new("keyless", SessionType::AwsIamUser).expect("session");
    let err = AccessKeyRotation::builder()
        .build()
        .unwrap()
        .rotate(&store, &user, None)
        .await
        .expect_err("no key");
    assert!(err.to_string().contains("no long-term access key"), "{err}");
}
