//! The cluster seam over the controller's session table: what the fake
//! worker asks (LookupSession, ActivateSession, AuthorizeConnection,
//! ConnectConnection, CloseConnection, CancelSession).

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;

use super::super::cluster::{
    AuthorizedConnection, ClosedReason, Cluster, ClusterError, SessionCredentials, SessionStatus,
};
use super::json::random_id;
use super::state::{Shared, close, new_connection};

pub(crate) struct ControllerCluster(pub(crate) Arc<Shared>);

fn err(message: &str) -> ClusterError {
    ClusterError(message.to_owned())
}

#[async_trait]
impl Cluster for ControllerCluster {
    async fn lookup_session(&self, session_id: &str) -> Option<SessionCredentials> {
        let inner = self.0.lock();
        let s = inner.sessions.get(session_id)?;
        Some(SessionCredentials {
            session_id: s.id.clone(),
            certificate_der: s.identity.certificate_der.clone(),
            private_key_pkcs8: s.identity.private_key_pkcs8.clone(),
            status: s.status(),
            tofu_token: s.tofu_token.clone(),
            expiration: s.expiration,
            connection_limit: s.connection_limit,
            endpoint: s.endpoint.clone(),
        })
    }

    async fn activate(&self, session_id: &str, tofu_token: &str) -> Result<(), ClusterError> {
        let now = self.0.now();
        let mut inner = self.0.lock();
        let seq = inner.next_seq();
        let s = inner
            .sessions
            .get_mut(session_id)
            .ok_or_else(|| err("session not found"))?;
        if s.status() != SessionStatus::Pending || s.tofu_token.is_some() {
            return Err(err("session is not pending"));
        }
        if now >= s.expiration {
            return Err(err("session expired"));
        }
        s.tofu_token = Some(tofu_token.to_owned());
        s.transition(SessionStatus::Active, now, seq);
        Ok(())
    }

    async fn authorize_connection(
        &self,
        session_id: &str,
        client: SocketAddr,
    ) -> Result<AuthorizedConnection, ClusterError> {
        let now = self.0.now();
        let mut inner = self.0.lock();
        let seq = inner.next_seq();
        let s = inner
            .sessions
            .get_mut(session_id)
            .ok_or_else(|| err("session not found"))?;
        if s.status() != SessionStatus::Active {
            return Err(err("session is not active"));
        }
        if now >= s.expiration {
            return Err(err("session expired"));
        }
        if s.limit_used() {
            return Err(err("connection limit reached"));
        }
        let connection_id = random_id("sc");
        s.connections
            .push(new_connection(connection_id.clone(), client));
        s.touch(now, seq);
        let connections_left = if s.connection_limit < 0 {
            -1
        } else {
            s.connection_limit - s.connections.len() as i32
        };
        let authorized = AuthorizedConnection {
            connection_id: connection_id.clone(),
            connection_limit: s.connection_limit,
            connections_left,
            expiration: s.expiration,
        };
        inner
            .connection_sessions
            .insert(connection_id, session_id.to_owned());
        Ok(authorized)
    }

    async fn connect_connection(
        &self,
        connection_id: &str,
        endpoint: SocketAddr,
    ) -> Result<(), ClusterError> {
        let now = self.0.now();
        let mut inner = self.0.lock();
        let seq = inner.next_seq();
        let session_id = inner
            .connection_sessions
            .get(connection_id)
            .cloned()
            .ok_or_else(|| err("connection not found"))?;
        let s = inner
            .sessions
            .get_mut(&session_id)
            .ok_or_else(|| err("session not found"))?;
        let conn = s
            .connections
            .iter_mut()
            .find(|c| c.connection_id == connection_id)
            .ok_or_else(|| err("connection not found"))?;
        if conn.closed_reason.is_some() {
            return Err(err("connection closed"));
        }
        conn.endpoint = Some(endpoint);
        s.touch(now, seq);
        Ok(())
    }

    async fn close_connection(
        &self,
        connection_id: &str,
        bytes_up: u64,
        bytes_down: u64,
        reason: ClosedReason,
    ) {
        let now = self.0.now();
        let mut inner = self.0.lock();
        let seq = inner.next_seq();
        let Some(session_id) = inner.connection_sessions.get(connection_id).cloned() else {
            return;
        };
        if let Some(s) = inner.sessions.get_mut(&session_id)
            && let Some(conn) = s
                .connections
                .iter_mut()
                .find(|c| c.connection_id == connection_id)
        {
            close(conn, bytes_up, bytes_down, reason);
            s.touch(now, seq);
        }
    }

    async fn cancel_session(&self, session_id: &str) -> Result<(), ClusterError> {
        let now = self.0.now();
        let mut inner = self.0.lock();
        let seq = inner.next_seq();
        let s = inner
            .sessions
            .get_mut(session_id)
            .ok_or_else(|| err("session not found"))?;
        if matches!(s.status(), SessionStatus::Pending | SessionStatus::Active) {
            s.transition(SessionStatus::Canceling, now, seq);
        }
        Ok(())
    }
}
