//! Every pair of statuses, against the table in `SessionStatus`'s docs:
//! through `can_become`, `Session::transition` and the update of both
//! repositories. The expected table is written out here, apart from the
//! code, so a change to either shows up as a failing pair.

use session_core::{
    Error, FsWorkspace, InMemoryWorkspace, Session, SessionStatus, SessionType, WorkspaceRepository,
};

use SessionStatus::*;

/// The table of the docs, row by row: `from`, then every `to` it allows.
const ALLOWED: [(SessionStatus, &[SessionStatus]); 7] = [
    (Inactive, &[Pending]),
    (Pending, &[Inactive, Active, Stopping, Disconnected]),
    (Active, &[Rotating, Stopping, Disconnected, Expired]),
    (Rotating, &[Active, Stopping, Disconnected, Expired]),
    (Stopping, &[Inactive, Active, Disconnected, Expired]),
    (Disconnected, &[Pending, Rotating, Stopping, Expired]),
    (Expired, &[Pending, Rotating, Stopping]),
];

fn expected(from: SessionStatus, to: SessionStatus) -> bool {
    from == to
        || ALLOWED
            .iter()
            .find(|(row, _)| *row == from)
            .is_some_and(|(_, allowed)| allowed.contains(&to))
}

/// A session stored with `status` (as a file written by another process
/// would hold it).
fn in_status(status: SessionStatus) -> Session {
    let mut json = serde_json::to_value(Session::new("s", SessionType::Azure).unwrap()).unwrap();
    json["status"] = status.as_str().into();
    serde_json::from_value(json).unwrap()
}

fn with_status(session: &Session, status: SessionStatus) -> Session {
    let mut json = serde_json::to_value(session).unwrap();
    json["status"] = status.as_str().into();
    serde_json::from_value(json).unwrap()
}

#[test]
fn the_table_lists_every_status_once() {
    let rows: Vec<SessionStatus> = ALLOWED.iter().map(|(from, _)| *from).collect();
    assert_eq!(rows, SessionStatus::ALL);
}

#[tokio::test]
async fn every_pair_follows_the_table_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let file = FsWorkspace::open(dir.path().join("w.json")).unwrap();
    let memory = InMemoryWorkspace::new();
    let repositories: [(&str, &dyn WorkspaceRepository); 2] =
        [("memory", &memory), ("file", &file)];
    let now = time::macros::datetime!(2030-01-01 0:00 UTC);
    let mut allowed = 0;
    for from in SessionStatus::ALL {
        for to in SessionStatus::ALL {
            let want = expected(from, to);
            allowed += usize::from(want && from != to);
            assert_eq!(from.can_become(to), want, "can_become {from} -> {to}");

            let mut session = in_status(from);
            match session.transition(to, now) {
                Ok(()) => {
                    assert!(want, "transition {from} -> {to} was allowed");
                    assert_eq!(session.status(), to);
                }
                Err(Error::InvalidTransition { from: f, to: t, .. }) => {
                    assert!(!want, "transition {from} -> {to} was refused");
                    assert_eq!((f, t), (from, to));
                    assert_eq!(
                        session.status(),
                        from,
                        "a refused transition changes nothing"
                    );
                }
                Err(other) => panic!("transition {from} -> {to}: {other:?}"),
            }

            for (name, repository) in repositories {
                let stored = repository.insert(in_status(from)).await.unwrap();
                match repository.update(with_status(&stored, to)).await {
                    Ok(updated) => {
                        assert!(want, "{name}: update {from} -> {to} was allowed");
                        assert_eq!(updated.status(), to);
                    }
                    Err(Error::InvalidTransition { .. }) => {
                        assert!(!want, "{name}: update {from} -> {to} was refused");
                        let kept = repository.get(stored.session_id).await.unwrap();
                        assert_eq!(
                            kept.status(),
                            from,
                            "{name}: a refused update changes nothing"
                        );
                    }
                    Err(other) => panic!("{name}: update {from} -> {to}: {other:?}"),
                }
            }
        }
    }
    assert_eq!(
        allowed, 24,
        "the documented table has 24 transitions of 42 pairs"
    );
}
