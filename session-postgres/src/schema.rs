//! The database schema and its migrations, applied at connect under an
//! advisory lock (so concurrent first connects do not race).

use std::path::PathBuf;

use session_core::{Error, Result};
use tokio_postgres::Client;

/// The schema version this build reads and writes.
pub(crate) const SCHEMA_VERSION: i32 = 1;

/// The advisory-lock key migrations hold.
const MIGRATION_LOCK: i64 = 0x5e55_1011_0000_0000;

/// Step `n` brings the schema from version `n` to `n + 1`.
const STEPS: &[&str] = &[
    // 0 → 1: sessions as rows, insertion order by `position`.
    "CREATE TABLE sessions (
         id uuid PRIMARY KEY,
         position bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
         parent uuid REFERENCES sessions (id),
         revision bigint NOT NULL,
         doc jsonb NOT NULL
     );
     CREATE INDEX sessions_parent ON sessions (parent);",
];

pub(crate) async fn migrate(client: &mut Client, label: &str) -> Result<()> {
    let fail = |what: &str, e: tokio_postgres::Error| {
        Error::storage(
            PathBuf::from(label),
            format!("{what}: {}", super::db_message(&e)),
            None,
        )
    };
    let tx = client
        .transaction()
        .await
        .map_err(|e| fail("begin the schema check", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| fail("lock the schema", e))?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS session_sdk_schema (version integer NOT NULL)")
        .await
        .map_err(|e| fail("create the schema table", e))?;
    let version: i32 = match tx
        .query_opt("SELECT version FROM session_sdk_schema", &[])
        .await
        .map_err(|e| fail("read the schema version", e))?
    {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO session_sdk_schema (version) VALUES (0)", &[])
                .await
                .map_err(|e| fail("record the schema version", e))?;
            0
        }
    };
    if version > SCHEMA_VERSION {
        return Err(Error::storage(
            PathBuf::from(label),
            format!(
                "the workspace schema is {version}, newer than this build reads ({SCHEMA_VERSION}); upgrade session-sdk"
            ),
            None,
        ));
    }
    for (from, step) in STEPS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(step)
            .await
            .map_err(|e| fail(&format!("migrate the schema from version {from}"), e))?;
    }
    if version < SCHEMA_VERSION {
        tx.execute(
            "UPDATE session_sdk_schema SET version = $1",
            &[&SCHEMA_VERSION],
        )
        .await
        .map_err(|e| fail("record the schema version", e))?;
    }
    tx.commit().await.map_err(|e| fail("commit the schema", e))
}
