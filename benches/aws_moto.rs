//! IAM-user start+stop through the SDK (GetSessionToken, secret store,
//! workspace, and the credentials-file write and removal) against moto,
//! compared in the same run with the bare `aws-sdk-sts` GetSessionToken call
//! alone. Two more variants attribute the difference by measurement: the
//! bare call with a new client per call (as the provider builds one per
//! start), and the SDK start+stop with no sink (no credentials file).
//! Figures: `benches/README.md`.
//!
//! Needs moto (`./scripts/test` installs it into `.cache/peers`); without it
//! the bench prints why and measures nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_main};
use session_sdk::aws::sink::{NoSink, SharedCredentialsFile};
use session_sdk::aws::{AwsClientConfig, AwsCredentials, IamUserProvider};
use session_sdk::{InMemoryWorkspace, Secret, Session, SessionManager, SessionType};
use session_testkit::peers::moto::MotoServer;

/// Sessions cycled through, so each start+stop is a different session.
const SESSIONS: usize = 1_000;

fn bench(c: &mut Criterion) {
    let Some(moto) = MotoServer::start() else {
        eprintln!(
            "aws_moto bench: moto is not installed (run ./scripts/test once); nothing measured"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let client = AwsClientConfig::builder()
        .endpoint_url(moto.endpoint_url())
        .max_attempts(1)
        .build()
        .expect("client");
    let sink = Arc::new(SharedCredentialsFile::with_paths(
        dir.path().join("credentials"),
        dir.path().join("config"),
    ));
    let manager_with = |sink: Arc<dyn session_sdk::aws::sink::CredentialSink>| {
        SessionManager::builder()
            .repository(Arc::new(InMemoryWorkspace::new()))
            .provider(Arc::new(IamUserProvider::new(client.clone(), sink)))
            .build()
            .expect("manager")
    };
    let manager = manager_with(sink);
    let manager_no_sink = manager_with(Arc::new(NoSink));
    let long_term = AwsCredentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        session_token: None,
        expiration: None,
    };
    let sessions_of = |manager: &SessionManager| -> Vec<session_sdk::SessionId> {
        rt.block_on(async {
            let mut ids = Vec::with_capacity(SESSIONS);
            for i in 0..SESSIONS {
                let session = manager
                    .add(Session::new(format!("bench-{i}"), SessionType::AwsIamUser).expect("s"))
                    .await
                    .expect("add");
                AwsCredentials::store_long_term(
                    manager.secrets().as_ref(),
                    session.session_id,
                    &long_term.access_key_id,
                    &long_term.secret_access_key,
                )
                .await
                .expect("key");
                ids.push(session.session_id);
            }
            ids
        })
    };
    let ids = sessions_of(&manager);
    let ids_no_sink = sessions_of(&manager_no_sink);
    // The same client the provider builds, signed with the same key.
    let sts = client.sts("us-east-1", Some(&long_term));

    let mut group = c.benchmark_group("aws_iam_user_vs_bare_sts");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("bare_get_session_token", |b| {
        b.iter(|| {
            rt.block_on(sts.get_session_token().send())
                .expect("GetSessionToken")
        })
    });
    group.bench_function("bare_get_session_token_new_client", |b| {
        b.iter(|| {
            let sts = client.sts("us-east-1", Some(&long_term));
            rt.block_on(sts.get_session_token().send())
                .expect("GetSessionToken")
        })
    });
    for (name, manager, ids) in [
        ("sdk_start_stop_no_sink", &manager_no_sink, &ids_no_sink),
        ("sdk_start_stop_with_credentials_file", &manager, &ids),
    ] {
        let mut next = 0;
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    let id = ids[next % SESSIONS];
                    next += 1;
                    rt.block_on(async {
                        manager
                            .run(session_sdk::Operation::Start, id)
                            .await
                            .expect("start");
                        manager
                            .run(session_sdk::Operation::Stop, id)
                            .await
                            .expect("stop");
                    });
                }
                started.elapsed()
            })
        });
    }
    group.finish();
}

// criterion_group! generates an undocumented pub fn.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
