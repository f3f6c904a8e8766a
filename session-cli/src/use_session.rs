//! The one way a provider command (`aws env`, `azure exec`, `redfish get`,
//! …) gets the session it acts on: resolve it by id or name, check its
//! type, open the secret store and the manager, then either make it fresh
//! through the manager or require it active, and read its secrets.

// Shared by the provider modules: a build without some of them leaves
// some of these unused.
#![cfg_attr(
    not(all(feature = "aws", feature = "azure", feature = "redfish")),
    allow(dead_code)
)]

use std::time::Duration;

use session_sdk::{
    ActionContext, Error, Secret, SecretKey, Session, SessionManager, SessionStatus, SessionType,
    WorkspaceRepositoryExt,
};

use crate::workspace::Workspace;
use crate::{Failure, Global, secrets};

/// A session resolved for a provider command, with the manager (and through
/// it the secret store and clock) of this invocation.
pub(crate) struct SessionInUse {
    pub(crate) session: Session,
    pub(crate) manager: SessionManager,
}

/// Finds `id_or_name` in `workspace` and checks that `accepts` its type
/// (`what` says what was expected, e.g. "an azure session"), before the
/// secret store is opened (a wrong name never asks for a passphrase).
pub(crate) async fn resolve(
    global: &Global,
    workspace: Workspace,
    id_or_name: &str,
    accepts: impl Fn(&SessionType) -> bool,
    what: &str,
) -> Result<SessionInUse, Failure> {
    let session = workspace.find(id_or_name).await?;
    if !accepts(&session.session_type) {
        return Err(Error::invalid_input(
            "session",
            format!(
                "{} is a {} session, not {what}",
                session.label(),
                session.session_type
            ),
        )
        .into());
    }
    let secrets = secrets::open(global, workspace.path()).await?;
    let manager = crate::manager(global, workspace, secrets)?;
    Ok(SessionInUse { session, manager })
}

impl SessionInUse {
    /// Starts or rotates the session through the manager unless it is
    /// active with more than `min_ttl` left
    /// ([`SessionManager::ensure_active`]).
    pub(crate) async fn ensure_active(&mut self, min_ttl: Duration) -> Result<(), Failure> {
        let id = self.session.session_id.to_string();
        self.session = self.manager.ensure_active(&id, min_ttl).await?;
        Ok(())
    }

    /// Fails unless the session is active: for commands that act on the
    /// service with the session as it is (`redfish get`).
    pub(crate) fn require_active(&self) -> Result<(), Failure> {
        if self.session.status() == SessionStatus::Active {
            return Ok(());
        }
        Err(Error::invalid_input(
            "session",
            format!(
                "{} is {}; start it first",
                self.session.label(),
                self.session.status()
            ),
        )
        .into())
    }

    /// The session's secret `name`, which start put there.
    pub(crate) async fn secret(&self, name: &str) -> Result<Secret, Failure> {
        self.manager
            .secrets()
            .get(&SecretKey::new(self.session.session_id, name)?)
            .await?
            .ok_or_else(|| {
                Error::Unauthenticated {
                    target: self.session.label(),
                    message: format!("no {name} in the secret store; start the session again"),
                }
                .into()
            })
    }

    /// What a provider call on this session needs: the manager's clock and
    /// secret store.
    pub(crate) fn context(&self) -> ActionContext {
        ActionContext::new(self.manager.clock().clone(), self.manager.secrets().clone())
    }
}
