//! `StartSession`, `ResumeSession` and `TerminateSession`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::auth::Signer;
use super::http::{
    ApiError, Body, check_length, optional_str, required_str, serialization, validation,
};
use super::state::FakeState;
use super::{SessionEvent, SessionStatus};

/// `^[a-zA-Z0-9_\-.:/]{3,128}$`, the model's `DocumentARN` pattern.
fn document_name_ok(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b))
}

/// `Parameters`: a map of string → list of strings (keys 1–255 characters).
fn parameters(body: &Body) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let map = match body.get("Parameters") {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(serialization("Parameters must be a map")),
    };
    let mut out = BTreeMap::new();
    for (key, values) in map {
        check_length(key, "parameters", 1, 255)?;
        let Value::Array(items) = values else {
            return Err(serialization("Each value of Parameters must be a list"));
        };
        let values = items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| serialization("Parameters values must be lists of strings"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(key.clone(), values);
    }
    Ok(out)
}

impl FakeState {
    pub(super) fn start_session(
        &mut self,
        body: &Body,
        signer: &Signer,
    ) -> Result<Value, ApiError> {
        let target = required_str(body, "Target", "target")?;
        check_length(&target, "target", 1, 400)?;
        let document_name = optional_str(body, "DocumentName")?;
        if let Some(name) = &document_name
            && !document_name_ok(name)
        {
            return Err(validation(
                &format!("'{name}'"),
                "documentName",
                "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.:/]{3,128}$",
            ));
        }
        let reason = optional_str(body, "Reason")?;
        if let Some(reason) = &reason {
            check_length(reason, "reason", 1, 256)?;
        }
        let parameters = parameters(body)?;
        if self.targets.get(&target) != Some(&true) {
            return Err(ApiError::client(
                "TargetNotConnected",
                &format!("{target} is not connected."),
            ));
        }
        if let Some(name) = &document_name {
            // An ARN names the document after its last `/`.
            let short = name.rsplit('/').next().unwrap_or(name);
            if !self.documents.contains(short) {
                return Err(ApiError::client(
                    "InvalidDocument",
                    &format!("Document with name {name} does not exist."),
                ));
            }
        }
        let mut record = self.blank_session(target, &signer.access_key_id, &signer.region);
        record.document_name = document_name;
        record.parameters = parameters;
        record.reason = reason;
        let session_id = self.new_session(record);
        let token = self.issue_token(&session_id).unwrap_or_default();
        self.notify(SessionEvent::Started {
            session_id: session_id.clone(),
        });
        Ok(json!({
            "SessionId": session_id,
            "TokenValue": token,
            "StreamUrl": self.stream_url(&session_id),
        }))
    }

    pub(super) fn resume_session(&mut self, body: &Body) -> Result<Value, ApiError> {
        let session_id = required_str(body, "SessionId", "sessionId")?;
        check_length(&session_id, "sessionId", 1, 96)?;
        let timed_out = match self.session(&session_id) {
            _ if self.forgotten.contains(&session_id) => {
                return Err(ApiError::client(
                    "DoesNotExistException",
                    &format!("Session {session_id} does not exist."),
                ));
            }
            Some(s) if s.status.is_active() && s.status != SessionStatus::Terminating => {
                s.timed_out
            }
            _ => {
                return Err(ApiError::client(
                    "DoesNotExistException",
                    &format!("Session {session_id} does not exist."),
                ));
            }
        };
        let token = if timed_out {
            String::new()
        } else {
            let token = self.issue_token(&session_id).unwrap_or_default();
            self.notify(SessionEvent::Resumed {
                session_id: session_id.clone(),
            });
            token
        };
        Ok(json!({
            "SessionId": session_id,
            "TokenValue": token,
            "StreamUrl": self.stream_url(&session_id),
        }))
    }

    /// `Terminating` (subscribers told), then `Terminated` unless the test
    /// holds sessions in `Terminating`. Harmless on ended and unknown
    /// sessions: the model lists no error for it.
    pub(super) fn terminate_session(&mut self, body: &Body) -> Result<Value, ApiError> {
        let session_id = required_str(body, "SessionId", "sessionId")?;
        check_length(&session_id, "sessionId", 1, 96)?;
        let live = self
            .session(&session_id)
            .is_some_and(|s| s.status.is_active() && s.status != SessionStatus::Terminating);
        if live {
            self.set_status(&session_id, SessionStatus::Terminating);
            if let Some(s) = self.session_mut(&session_id) {
                s.token = None;
            }
            self.notify(SessionEvent::Terminating {
                session_id: session_id.clone(),
            });
            if !self.hold_terminating {
                self.set_status(&session_id, SessionStatus::Terminated);
            }
        }
        Ok(json!({ "SessionId": session_id }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_names_follow_the_model_pattern() {
        assert!(document_name_ok("AWS-StartSSHSession"));
        assert!(document_name_ok(
            "arn:aws:ssm:us-east-1:111122223333:document/My.Doc_1"
        ));
        assert!(!document_name_ok("ab"));
        assert!(!document_name_ok("has space"));
        assert!(!document_name_ok(&"a".repeat(129)));
    }
}
