//! The workspace a command works on: the JSON file (`FsWorkspace`), or a
//! database shared by a team or a fleet (`PgWorkspace`, for
//! `--workspace postgres://…`), behind one type so every command takes
//! either.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use session_sdk::{
    FsWorkspace, Result, Session, SessionId, SessionLock, SharedEvent, WorkspaceRepository,
};

use crate::Failure;

/// Where the database password comes from: the environment, as libpq's
/// own tools read it, never a flag (a flag shows in `ps`).
#[cfg(feature = "postgres")]
const PASSWORD_ENV: &str = "PGPASSWORD";

/// The workspace of one command.
#[derive(Clone, Debug)]
pub(crate) struct Workspace {
    repository: Arc<dyn WorkspaceRepository>,
    /// The file workspace, when it is one (its journal is folded in at the
    /// end of a command).
    file: Option<FsWorkspace>,
    /// The file, or for a database the default file's path: what other
    /// files are placed beside (the secrets file, lock directories).
    anchor: PathBuf,
    /// What to call it in messages: the file's path, or the URL without
    /// its password.
    label: String,
}

impl Workspace {
    /// Opens what `--workspace` names: a `postgres://` or `postgresql://`
    /// URL (with feature `postgres`; the password from `PGPASSWORD`),
    /// else a file path; nothing given is the default file.
    pub(crate) async fn open(
        named: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> std::result::Result<Self, Failure> {
        let named = named.filter(|p| !p.as_os_str().is_empty());
        if let Some(url) = named.and_then(Path::to_str).filter(|s| is_database_url(s)) {
            return Self::open_database(url, env).await;
        }
        let builder = match named {
            Some(path) => FsWorkspace::builder().path(path),
            None => FsWorkspace::builder(),
        };
        let file = builder.build()?;
        Ok(Workspace {
            repository: Arc::new(file.clone()),
            anchor: file.path().to_path_buf(),
            label: file.path().display().to_string(),
            file: Some(file),
        })
    }

    #[cfg(feature = "postgres")]
    async fn open_database(
        url: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> std::result::Result<Self, Failure> {
        use session_sdk::postgres::PgWorkspace;
        if url_has_password(url) {
            return Err(Failure::Usage(format!(
                "--workspace: the database URL holds a password; remove it from the URL and set \
                 {PASSWORD_ENV} instead (a URL on the command line is visible to other users)"
            )));
        }
        let password = env(PASSWORD_ENV)
            .filter(|p| !p.is_empty())
            .map(session_sdk::Secret::new);
        let database = PgWorkspace::connect(url, password.as_ref()).await?;
        Ok(Workspace {
            label: database.label().to_owned(),
            repository: Arc::new(database),
            anchor: FsWorkspace::open_default()?.path().to_path_buf(),
            file: None,
        })
    }

    #[cfg(not(feature = "postgres"))]
    async fn open_database(
        _url: &str,
        _env: &dyn Fn(&str) -> Option<String>,
    ) -> std::result::Result<Self, Failure> {
        Err(Failure::Usage(
            "--workspace: this sessionctl was built without the `postgres` feature, so it \
             cannot use a database workspace"
                .into(),
        ))
    }

    /// The path other files go beside: the workspace file, or for a
    /// database the default workspace file's path (which is not created).
    pub(crate) fn path(&self) -> &Path {
        &self.anchor
    }

    /// The file or the database URL (without its password), for messages.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Folds a file workspace's journal into the file (see
    /// `FsWorkspace::compact`); a database has nothing to fold.
    pub(crate) async fn compact(&self) -> Result<bool> {
        match &self.file {
            Some(file) => file.compact().await,
            None => Ok(false),
        }
    }
}

/// Whether `--workspace` names a database rather than a file.
fn is_database_url(named: &str) -> bool {
    ["postgres://", "postgresql://"].iter().any(|scheme| {
        named.len() > scheme.len() && named[..scheme.len()].eq_ignore_ascii_case(scheme)
    })
}

/// Whether the URL's authority has `user:password@`.
#[cfg(feature = "postgres")]
fn url_has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        || url.contains("password=")
}

#[async_trait::async_trait]
impl WorkspaceRepository for Workspace {
    async fn list(&self) -> Result<Vec<Session>> {
        self.repository.list().await
    }
    async fn get(&self, id: SessionId) -> Result<Session> {
        self.repository.get(id).await
    }
    async fn insert(&self, session: Session) -> Result<Session> {
        self.repository.insert(session).await
    }
    async fn update(&self, session: Session) -> Result<Session> {
        self.repository.update(session).await
    }
    async fn delete(&self, id: SessionId, expected_revision: Option<u64>) -> Result<Session> {
        self.repository.delete(id, expected_revision).await
    }
    async fn lock_session(&self, id: SessionId) -> Result<SessionLock> {
        self.repository.lock_session(id).await
    }
    async fn hold_live(&self, id: SessionId) -> Result<Option<SessionLock>> {
        self.repository.hold_live(id).await
    }
    async fn is_held_elsewhere(&self, id: SessionId) -> Result<bool> {
        self.repository.is_held_elsewhere(id).await
    }
    fn shares_events(&self) -> bool {
        self.repository.shares_events()
    }
    async fn share_event(&self, event: SharedEvent) -> Result<()> {
        self.repository.share_event(event).await
    }
    async fn shared_events(&self) -> Result<Option<tokio::sync::broadcast::Receiver<SharedEvent>>> {
        self.repository.shared_events().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_and_their_passwords_are_told_apart() {
        assert!(is_database_url("postgres://u@h/db"));
        assert!(is_database_url("PostgreSQL://u@h/db"));
        assert!(!is_database_url("postgres.json"));
        assert!(!is_database_url("./postgres://x"));
        #[cfg(feature = "postgres")]
        {
            assert!(url_has_password("postgres://u:pw@h:5/db"));
            assert!(url_has_password("postgres://u@h/db?password=pw"));
            assert!(!url_has_password("postgres://u@h:5432/db"));
            assert!(!url_has_password("postgres://h/db?sslmode=disable"));
        }
    }
}
