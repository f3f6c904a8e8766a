//! Sessions: list with pagination and refresh, cancel with the version
//! check (`boundary.md` §1.5–§1.7).

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use session_core::{Error, Result};

use super::{ControllerClient, ListPage, Session, non_empty};

/// What to list (`GET /v1/sessions`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListQuery {
    /// The scope: a project (`p_…`), or with [`recursive`](Self::recursive)
    /// any scope. Default `global`, recursive.
    pub scope_id: String,
    /// Also list the scope's children.
    pub recursive: bool,
    /// A go-bexpr filter over `{"item": <session>}`, e.g.
    /// `"/item/status" == "active"`.
    pub filter: Option<String>,
    /// Also list terminated sessions (by default the controller lists only
    /// pending, active and canceling ones). Set it when watching for a
    /// session's end, so that a refresh reports it.
    pub include_terminated: bool,
    /// Items per page; the controller caps it (default 1,000).
    pub page_size: Option<u32>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            scope_id: "global".to_owned(),
            recursive: true,
            filter: None,
            include_terminated: false,
            page_size: None,
        }
    }
}

impl ListQuery {
    /// Sessions of the project `scope_id` only.
    pub fn in_project(scope_id: impl Into<String>) -> Self {
        Self {
            scope_id: scope_id.into(),
            recursive: false,
            ..Self::default()
        }
    }

    /// Sessions in `scope_id` and every scope below it.
    pub fn under(scope_id: impl Into<String>) -> Self {
        Self {
            scope_id: scope_id.into(),
            ..Self::default()
        }
    }

    /// Only the sessions matching `filter` (go-bexpr).
    pub fn with_filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// Terminated sessions too.
    pub fn with_terminated(mut self) -> Self {
        self.include_terminated = true;
        self
    }

    /// Pages of `size` items.
    pub fn with_page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![("scope_id", self.scope_id.clone())];
        if self.recursive {
            pairs.push(("recursive", "true".to_owned()));
        }
        if let Some(filter) = &self.filter {
            pairs.push(("filter", filter.clone()));
        }
        if self.include_terminated {
            pairs.push(("include_terminated", "true".to_owned()));
        }
        if let Some(size) = self.page_size {
            pairs.push(("page_size", size.to_string()));
        }
        pairs
    }
}

/// A listing of sessions that can be brought up to date cheaply: a
/// refresh asks the controller only for what changed since (its
/// `list_token`), then merges it.
#[derive(Clone, Debug)]
pub struct SessionListing {
    query: ListQuery,
    sessions: Vec<Session>,
    list_token: Option<String>,
}

impl SessionListing {
    /// The sessions, in the controller's order (newest first), refreshed
    /// ones in place.
    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    /// The sessions, owned.
    pub fn into_sessions(self) -> Vec<Session> {
        self.sessions
    }

    /// The token of the next refresh; `None` from controllers before 0.15,
    /// whose refresh lists everything again.
    pub fn list_token(&self) -> Option<&str> {
        self.list_token.as_deref()
    }
}

impl ControllerClient {
    /// Lists the sessions `query` selects, every page.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `scope_id` or `filter` when the
    /// controller refuses them, or any error of the call.
    pub async fn list_sessions(&self, query: &ListQuery) -> Result<SessionListing> {
        let mut listing = SessionListing {
            query: query.clone(),
            sessions: Vec::new(),
            list_token: None,
        };
        listing.list_token = self
            .fetch_pages(
                "sessions",
                &query.pairs(),
                None,
                &mut listing.sessions,
                |s| &s.id,
            )
            .await?;
        Ok(listing)
    }

    /// Brings `listing` up to date: changed sessions replaced, new ones
    /// added, removed ones dropped.
    ///
    /// # Errors
    ///
    /// Any error of the call; `listing` is then unchanged.
    pub async fn refresh_sessions(&self, listing: &mut SessionListing) -> Result<()> {
        let mut sessions = if listing.list_token.is_some() {
            listing.sessions.clone()
        } else {
            Vec::new()
        };
        let token = self
            .fetch_pages(
                "sessions",
                &listing.query.pairs(),
                listing.list_token.clone(),
                &mut sessions,
                |s| &s.id,
            )
            .await?;
        listing.sessions = sessions;
        listing.list_token = token;
        Ok(())
    }

    /// Fetches pages of `collection` into `cache` until the controller says
    /// `complete`, merging by id; returns the last list token.
    pub(super) async fn fetch_pages<T: serde::de::DeserializeOwned>(
        &self,
        collection: &str,
        query: &[(&'static str, String)],
        mut list_token: Option<String>,
        cache: &mut Vec<T>,
        id_of: fn(&T) -> &str,
    ) -> Result<Option<String>> {
        let scope = query
            .iter()
            .find(|(k, _)| *k == "scope_id")
            .map_or("", |(_, v)| v.as_str());
        let mut fresh: Vec<T> = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        loop {
            let mut pairs = query.to_vec();
            if let Some(token) = &list_token {
                pairs.push(("list_token", token.clone()));
            }
            let page: ListPage<T> = self
                .call(
                    Method::GET,
                    &[collection],
                    &pairs,
                    None,
                    &format!("list {collection} in {scope}"),
                    &[],
                )
                .await?;
            fresh.extend(page.items);
            removed.extend(page.removed_ids);
            let token = (!page.list_token.is_empty()).then_some(page.list_token);
            if page.response_type != "delta" || token.is_none() {
                // Merge only after the last page, so a failure midway
                // leaves the cache as it was.
                for item in fresh {
                    match cache.iter_mut().find(|c| id_of(c) == id_of(&item)) {
                        Some(seen) => *seen = item,
                        None => cache.push(item),
                    }
                }
                cache.retain(|c| !removed.iter().any(|r| r == id_of(c)));
                return Ok(token);
            }
            list_token = token;
        }
    }

    /// Cancels the session `id` and returns it (normally `canceling`).
    ///
    /// Reads the session for its version, then cancels; on a refusal (a
    /// stale version is a 500 on real controllers, a 400 on some) reads it
    /// again: already canceling or terminated counts as done, otherwise it
    /// retries once with the fresh version.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown session,
    /// [`Error::PermissionDenied`] without `cancel` rights, or the second
    /// refusal.
    pub async fn cancel_session(&self, id: &str) -> Result<Session> {
        non_empty("session id", id)?;
        let mut session = self.read_session(id).await?;
        let mut retried = false;
        loop {
            if session.was_canceled_or_terminated() {
                return Ok(session);
            }
            let answer = self
                .call::<Session>(
                    Method::POST,
                    &["sessions", &format!("{id}:cancel")],
                    &[],
                    Some(json!({ "version": session.version })),
                    &format!("cancel session {id}"),
                    &[],
                )
                .await;
            match answer {
                Ok(session) => return Ok(session),
                Err(e @ (Error::NotFound { .. } | Error::PermissionDenied { .. })) => {
                    return Err(e);
                }
                Err(e) if retried => return Err(e),
                Err(e) => {
                    tracing::debug!(session = id, error = %e, "cancel refused; reading the session again");
                    retried = true;
                    session = self.read_session(id).await?;
                }
            }
        }
    }

    /// Reads the session `id` every `every` until `done` holds, for at most
    /// `deadline`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] at the deadline, or any error of a read.
    pub async fn wait_for_session(
        &self,
        id: &str,
        done: impl Fn(&Session) -> bool,
        every: Duration,
        deadline: Duration,
    ) -> Result<Session> {
        let waiting = async {
            loop {
                let session = self.read_session(id).await?;
                if done(&session) {
                    return Ok(session);
                }
                tokio::time::sleep(every).await;
            }
        };
        tokio::time::timeout(deadline, waiting)
            .await
            .map_err(|_| Error::Timeout {
                target: format!("{}: session {id}", self.address),
                after: deadline,
            })?
    }
}
