//! From a Leapp workspace to our sessions: which to add, which are already
//! here, which cannot be mapped and why. Each provider crate maps its own
//! types ([`LeappMapper`]); the plan gives every session its id, name,
//! region and parent, orders parents before children, and makes a second
//! import add nothing.

use serde_json::Value;

use super::model::{LeappSession, LeappWorkspace};
use crate::{Result, Session, SessionId, SessionType, WorkspaceRepository};

/// The key of [`Session::extra`] that records where an imported session
/// came from: `{"tool": "leapp", "sessionId": "<Leapp's id>"}`.
pub const IMPORTED_FROM: &str = "importedFrom";

/// Maps the Leapp session types of one provider onto its sessions.
pub trait LeappMapper: Send + Sync {
    /// The Leapp `type`s this mapper takes (e.g. `awsIamUser`).
    fn leapp_types(&self) -> &[&str];

    /// The session type and settings for `leapp`, with anything the user
    /// must still do; `Err` says why it cannot be mapped. The plan sets the
    /// id, name, region and parent.
    ///
    /// # Errors
    ///
    /// Why this session cannot be mapped, in words for the user.
    fn map(
        &self,
        workspace: &LeappWorkspace,
        leapp: &LeappSession,
    ) -> std::result::Result<Mapped, String>;
}

/// What a [`LeappMapper`] made of one session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Mapped {
    /// Our session type.
    pub session_type: SessionType,
    /// The session's `config`, as JSON.
    pub config: Value,
    /// What the user must still do before the session can start; no
    /// secret in it.
    pub to_do: Vec<String>,
    /// The secrets Leapp kept in the OS keychain for this session.
    pub secrets: Vec<KeychainSecret>,
}

/// A secret Leapp keeps in the OS keychain for a session, and the name it
/// has in our secret store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeychainSecret {
    /// The keytar account Leapp stores it under (service `Leapp`).
    pub keychain_account: String,
    /// The secret's name for our session (e.g. `aws-access-key-id`).
    pub name: String,
}

impl KeychainSecret {
    /// The secret `name` of ours, kept by Leapp under `keychain_account`.
    pub fn new(keychain_account: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            keychain_account: keychain_account.into(),
            name: name.into(),
        }
    }
}

impl Mapped {
    /// A session of `session_type` with `config`, nothing left to do.
    pub fn new(session_type: SessionType, config: Value) -> Self {
        Self {
            session_type,
            config,
            to_do: Vec::new(),
            secrets: Vec::new(),
        }
    }

    /// Adds a secret to copy from Leapp's keychain.
    pub fn with_secret(mut self, secret: KeychainSecret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Adds something the user must still do.
    pub fn with_to_do(mut self, what: impl Into<String>) -> Self {
        self.to_do.push(what.into());
        self
    }
}

/// One Leapp session in an [`ImportPlan`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PlanItem {
    /// Leapp's id.
    pub leapp_id: String,
    /// Leapp's name.
    pub leapp_name: String,
    /// Leapp's type.
    pub leapp_type: String,
    /// What the import does with it.
    pub outcome: Outcome,
}

/// What an import does with one Leapp session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Outcome {
    /// Added as this session (inactive), with what is left to do.
    Add {
        /// The session to insert.
        session: Box<Session>,
        /// What the user must still do.
        to_do: Vec<String>,
        /// The secrets to copy from Leapp's keychain
        /// ([`ImportPlan::copy_secrets`]).
        secrets: Vec<KeychainSecret>,
    },
    /// A session imported from it is already in the workspace.
    AlreadyImported(SessionId),
    /// Not imported, and why.
    NotMapped(String),
}

/// What importing a Leapp workspace would do, session by session, parents
/// before their children.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportPlan {
    /// Every Leapp session.
    pub items: Vec<PlanItem>,
}

impl ImportPlan {
    /// The sessions to add, in the order to add them.
    pub fn to_add(&self) -> impl Iterator<Item = &Session> {
        self.items.iter().filter_map(|i| match &i.outcome {
            Outcome::Add { session, .. } => Some(&**session),
            _ => None,
        })
    }

    /// Inserts the sessions to add, parents first; returns them as stored.
    ///
    /// # Errors
    ///
    /// The repository's error; sessions inserted before it stay (a second
    /// import adds the rest).
    pub async fn apply(&self, repository: &dyn WorkspaceRepository) -> Result<Vec<Session>> {
        let mut added = Vec::new();
        for session in self.to_add() {
            added.push(repository.insert(session.clone()).await?);
        }
        Ok(added)
    }
}

impl ImportPlan {
    /// Copies the keychain secrets of the sessions added into `store`,
    /// reading each with `read` (e.g. [`leapp_keychain_secret`](super::leapp_keychain_secret)).
    /// Returns, per added session with secrets, the names of those not
    /// found (empty when all were copied).
    ///
    /// # Errors
    ///
    /// The first error of `read` or of the store; secrets copied before it
    /// stay.
    pub async fn copy_secrets(
        &self,
        store: &dyn crate::SecretStore,
        read: impl Fn(&str) -> Result<Option<crate::Secret>>,
    ) -> Result<Vec<(SessionId, Vec<String>)>> {
        let mut missing = Vec::new();
        for item in &self.items {
            let Outcome::Add {
                session, secrets, ..
            } = &item.outcome
            else {
                continue;
            };
            if secrets.is_empty() {
                continue;
            }
            let mut not_found = Vec::new();
            for secret in secrets {
                match read(&secret.keychain_account)? {
                    Some(value) => {
                        let key = crate::SecretKey::new(session.session_id, &secret.name)?;
                        store.put(&key, &value).await?;
                    }
                    None => not_found.push(secret.name.clone()),
                }
            }
            missing.push((session.session_id, not_found));
        }
        Ok(missing)
    }
}

/// Our id for the Leapp session `leapp_id`: the same UUID when it is one
/// (Leapp's are v4), else one derived from it, so that every import of a
/// session gives it the same id.
pub fn session_id_for(leapp_id: &str) -> SessionId {
    if let Ok(uuid) = uuid::Uuid::parse_str(leapp_id) {
        return SessionId::from_uuid(uuid);
    }
    SessionId::derived("leapp", leapp_id)
}

/// Plans the import of `workspace` into a workspace holding `existing`,
/// with `mappers` for the types this build knows.
pub fn plan(
    workspace: &LeappWorkspace,
    existing: &[Session],
    mappers: &[&dyn LeappMapper],
) -> ImportPlan {
    let mut items: Vec<PlanItem> = Vec::new();
    // Parents first: a session is planned once its parent is.
    let mut pending: Vec<&LeappSession> = workspace.sessions.iter().collect();
    let mut seen_ids = std::collections::HashSet::new();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|leapp| {
            let parent_done = leapp
                .parent_session_id
                .as_ref()
                .is_none_or(|p| items.iter().any(|i| &i.leapp_id == p));
            let parent_missing = leapp
                .parent_session_id
                .as_ref()
                .is_some_and(|p| workspace.session(p).is_none());
            if !(parent_done || parent_missing) {
                return true;
            }
            let outcome = if !seen_ids.insert(leapp.session_id.clone()) {
                Outcome::NotMapped("another Leapp session has the same id".into())
            } else {
                outcome(workspace, existing, mappers, &items, leapp)
            };
            items.push(PlanItem {
                leapp_id: leapp.session_id.clone(),
                leapp_name: leapp.session_name.clone(),
                leapp_type: leapp.session_type.clone(),
                outcome,
            });
            false
        });
        if pending.len() == before {
            // Nothing moved: the rest wait on each other.
            for leapp in pending.drain(..) {
                items.push(PlanItem {
                    leapp_id: leapp.session_id.clone(),
                    leapp_name: leapp.session_name.clone(),
                    leapp_type: leapp.session_type.clone(),
                    outcome: Outcome::NotMapped(
                        "its chain of parent sessions loops back to itself".into(),
                    ),
                });
            }
        }
    }
    ImportPlan { items }
}

fn outcome(
    workspace: &LeappWorkspace,
    existing: &[Session],
    mappers: &[&dyn LeappMapper],
    planned: &[PlanItem],
    leapp: &LeappSession,
) -> Outcome {
    let id = session_id_for(&leapp.session_id);
    if existing.iter().any(|s| s.session_id == id) {
        return Outcome::AlreadyImported(id);
    }
    let parent = match &leapp.parent_session_id {
        None => None,
        Some(p) => match planned.iter().find(|i| &i.leapp_id == p) {
            None => {
                return Outcome::NotMapped(format!(
                    "its parent session {p} is not in the Leapp workspace"
                ));
            }
            Some(PlanItem {
                outcome: Outcome::NotMapped(_),
                leapp_name,
                ..
            }) => {
                return Outcome::NotMapped(format!(
                    "its parent session '{leapp_name}' is not imported"
                ));
            }
            Some(_) => Some(session_id_for(p)),
        },
    };
    let Some(mapper) = mappers
        .iter()
        .find(|m| m.leapp_types().contains(&leapp.session_type.as_str()))
    else {
        return Outcome::NotMapped(format!(
            "no provider in this build imports Leapp's '{}' sessions",
            leapp.session_type
        ));
    };
    let mapped = match mapper.map(workspace, leapp) {
        Ok(mapped) => mapped,
        Err(reason) => return Outcome::NotMapped(reason),
    };
    let session =
        Session::new(leapp.session_name.clone(), mapped.session_type).and_then(|mut s| {
            s.session_id = id;
            s.region = leapp.region.clone();
            s.parent_session_id = parent;
            s.config.set(&mapped.config)?;
            s.extra.insert(
                IMPORTED_FROM.into(),
                serde_json::json!({"tool": "leapp", "sessionId": leapp.session_id}),
            );
            s.validate()?;
            Ok(s)
        });
    match session {
        Ok(session) => Outcome::Add {
            session: Box::new(session),
            to_do: mapped.to_do,
            secrets: mapped.secrets,
        },
        Err(e) => Outcome::NotMapped(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Maps type `t` to an `awsIamUser` with empty settings.
    struct Any;
    impl LeappMapper for Any {
        fn leapp_types(&self) -> &[&str] {
            &["t"]
        }
        fn map(
            &self,
            _: &LeappWorkspace,
            leapp: &LeappSession,
        ) -> std::result::Result<Mapped, String> {
            if leapp.session_name == "refused" {
                return Err("refused by the mapper".into());
            }
            Ok(Mapped::new(SessionType::AwsIamUser, serde_json::json!({})))
        }
    }

    fn leapp(id: &str, name: &str, t: &str, parent: Option<&str>) -> LeappSession {
        LeappSession {
            session_id: id.into(),
            session_name: name.into(),
            session_type: t.into(),
            parent_session_id: parent.map(Into::into),
            ..LeappSession::default()
        }
    }

    fn reasons(plan: &ImportPlan) -> Vec<(String, String)> {
        plan.items
            .iter()
            .map(|i| {
                let what = match &i.outcome {
                    Outcome::Add { .. } => "add".to_owned(),
                    Outcome::AlreadyImported(_) => "already".to_owned(),
                    Outcome::NotMapped(r) => r.clone(),
                };
                (i.leapp_name.clone(), what)
            })
            .collect()
    }

    #[test]
    fn parents_first_and_every_session_accounted_for() {
        let ws = LeappWorkspace {
            sessions: vec![
                leapp("c", "child", "t", Some("p")),
                leapp("p", "parent", "t", None),
                leapp("x", "loop-a", "t", Some("y")),
                leapp("y", "loop-b", "t", Some("x")),
                leapp("o", "orphan", "t", Some("gone")),
                leapp("r", "refused", "t", None),
                leapp("rc", "refused-child", "t", Some("r")),
                leapp("u", "unknown", "localstack", None),
                leapp("p", "twin", "t", None),
            ],
            ..LeappWorkspace::default()
        };
        let plan = plan(&ws, &[], &[&Any]);
        let got = reasons(&plan);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(at("parent") < at("child"), "{names:?}");
        assert_eq!(got.len(), 9, "{got:?}");
        let reason = |n: &str| got[at(n)].1.clone();
        assert_eq!(reason("parent"), "add");
        assert_eq!(reason("child"), "add");
        assert!(reason("loop-a").contains("loops"), "{got:?}");
        assert!(
            reason("orphan").contains("not in the Leapp workspace"),
            "{got:?}"
        );
        assert_eq!(reason("refused"), "refused by the mapper");
        assert!(
            reason("refused-child").contains("'refused' is not imported"),
            "{got:?}"
        );
        assert!(reason("unknown").contains("'localstack'"), "{got:?}");
        assert!(reason("twin").contains("same id"), "{got:?}");
        let child = plan.to_add().find(|s| s.session_name == "child").unwrap();
        assert_eq!(child.parent_session_id, Some(session_id_for("p")));
        // Non-UUID ids get a stable derived id; a second plan finds them.
        assert_eq!(session_id_for("p"), session_id_for("p"));
        let existing: Vec<Session> = plan.to_add().cloned().collect();
        let again = reasons(&super::plan(&ws, &existing, &[&Any]));
        assert_eq!(
            again.iter().filter(|(_, r)| r == "already").count(),
            2,
            "{again:?}"
        );
    }
}
