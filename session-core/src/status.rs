//! Session status and the legal transitions between statuses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Where a session is in its life.
///
/// `inactive`, `pending` and `active` are the three statuses Leapp has; the
/// others exist because the session kinds this crate covers have them:
/// credentials expire, a rotation is in flight, a tunnel drops and can be
/// resumed, a remote session takes time to cancel.
///
/// # Transitions
///
/// A status change that is not in this table is refused with
/// [`Error::InvalidTransition`], both by [`Session::transition`](crate::Session::transition)
/// and by every [`WorkspaceRepository`](crate::WorkspaceRepository) on update,
/// so no writer can silently overwrite a status. Writing the same status again
/// is not a transition and is always allowed.
///
/// | from \ to      | inactive | pending | active | rotating | stopping | disconnected | expired |
/// |----------------|:--:|:--:|:--:|:--:|:--:|:--:|:--:|
/// | `inactive`     |    | ✔ |    |    |    |    |    |
/// | `pending`      | ✔ ¹ |    | ✔ |    | ✔ ² | ✔ ⁵ |    |
/// | `active`       |    |    |    | ✔ | ✔ | ✔ | ✔ |
/// | `rotating`     |    |    | ✔ |    | ✔ ² | ✔ ³ | ✔ ³ |
/// | `stopping`     | ✔ |    | ✔ ⁴ |    |    | ✔ ⁴ | ✔ ⁴ |
/// | `disconnected` |    | ✔ |    | ✔ | ✔ |    | ✔ |
/// | `expired`      |    | ✔ |    | ✔ | ✔ |    |    |
///
/// 1. start failed: back to `inactive`, the error is kept in `last_error`.
/// 2. stop of a session left in a transitional status by a process that died.
/// 3. rotate failed: back to the status before it (`active` if the old
///    credentials are still valid, else `expired`; `disconnected` for a tunnel).
///    When the provider declares
///    [`Capabilities::rotate_unauthenticated_ends_session`](crate::Capabilities::rotate_unauthenticated_ends_session)
///    and the rotate failed unauthenticated, the session ends instead:
///    `rotating` → `stopping` → `inactive`, with the error kept.
/// 4. stop failed and the session is still live: back to the status before it.
/// 5. resume of a live session failed: its remote session is still
///    resumable, so it goes back to `disconnected`, the error kept.
///
/// # Native states of each provider
///
/// | provider | native state | `SessionStatus` |
/// |---|---|---|
/// | AWS credential types, Azure | no credentials / requesting / valid / past `Expiration` | `inactive` / `pending` / `active` / `expired` |
/// | AWS SSM | `Connecting` | `pending` |
/// | | `Connected` | `active` |
/// | | `Disconnected` (WebSocket lost, resumable) | `disconnected` |
/// | | `Terminating` | `stopping` |
/// | | `Terminated`, and `Failed` (with `last_error` set) | `inactive` |
/// | Boundary | `pending` (authorized, local proxy not yet listening) | `pending` |
/// | | `pending` with the local proxy listening, `active` | `active` |
/// | | `canceling` | `stopping` |
/// | | `terminated` (reason `canceled` / `closed by end-user`) | `inactive` |
/// | | `terminated` (reason `timed out` / `connection limit`) | `expired` |
/// | Redfish | session resource exists / token gives 401 or the resource is gone | `active` / `expired` |
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum SessionStatus {
    /// Nothing is issued or connected.
    Inactive,
    /// Start is in progress.
    Pending,
    /// Credentials are issued and valid, or the connection is up.
    Active,
    /// Rotation is in progress; the previous credentials stay valid meanwhile.
    Rotating,
    /// Stop is in progress.
    Stopping,
    /// A tunnel's connection is lost but the remote session can be resumed.
    Disconnected,
    /// The credentials or the remote session ran out; start or rotate again.
    Expired,
}

impl SessionStatus {
    /// Every status, in table order.
    pub const ALL: [SessionStatus; 7] = [
        SessionStatus::Inactive,
        SessionStatus::Pending,
        SessionStatus::Active,
        SessionStatus::Rotating,
        SessionStatus::Stopping,
        SessionStatus::Disconnected,
        SessionStatus::Expired,
    ];

    /// The serialized name, e.g. `inactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Inactive => "inactive",
            SessionStatus::Pending => "pending",
            SessionStatus::Active => "active",
            SessionStatus::Rotating => "rotating",
            SessionStatus::Stopping => "stopping",
            SessionStatus::Disconnected => "disconnected",
            SessionStatus::Expired => "expired",
        }
    }

    /// Whether the table above allows going from `self` to `to`.
    /// `self == to` is not a transition and returns `true`.
    pub fn can_become(self, to: SessionStatus) -> bool {
        use SessionStatus::*;
        if self == to {
            return true;
        }
        matches!(
            (self, to),
            (Inactive, Pending)
                | (Pending, Inactive | Active | Stopping | Disconnected)
                | (Active, Rotating | Stopping | Disconnected | Expired)
                | (Rotating, Active | Stopping | Disconnected | Expired)
                | (Stopping, Inactive | Active | Disconnected | Expired)
                | (Disconnected, Pending | Rotating | Stopping | Expired)
                | (Expired, Pending | Rotating | Stopping)
        )
    }

    /// Whether an operation is in flight (`pending`, `rotating`, `stopping`).
    pub fn is_transitional(self) -> bool {
        matches!(
            self,
            SessionStatus::Pending | SessionStatus::Rotating | SessionStatus::Stopping
        )
    }

    /// Whether something was issued that `stop` should clean up: every status
    /// but `inactive`.
    pub fn is_live(self) -> bool {
        self != SessionStatus::Inactive
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SessionStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                Error::invalid_input(
                    "status",
                    format!("{s:?} is not one of inactive, pending, active, rotating, stopping, disconnected, expired"),
                )
            })
    }
}
