//! [`RecordingMoto`]: moto with its request recorder on, for checks moto
//! itself does not make (it accepts any MFA code, for one): what a client
//! really sent, read back from moto's recording.
//!
//! moto appends every request it receives, body included, to the recording
//! file (`MOTO_ENABLE_RECORDING`, `MOTO_RECORDER_FILEPATH`) before handling
//! it, so refused requests are recorded too.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::moto::{ALLOW_ALL_POLICY, MotoAccessKey, MotoServer};
use crate::readers::botocore::Botocore;

/// moto recording every request into a private file, and botocore's
/// Python to read the recording with.
pub struct RecordingMoto {
    /// The server.
    pub moto: MotoServer,
    /// The peers' botocore, also used to seed IAM users.
    pub botocore: Botocore,
    recording: PathBuf,
    _dir: tempfile::TempDir,
}

impl fmt::Debug for RecordingMoto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingMoto")
            .field("moto", &self.moto)
            .field("recording", &self.recording)
            .finish_non_exhaustive()
    }
}

impl RecordingMoto {
    /// Starts moto with the recorder on. `None` when moto or botocore is
    /// missing outside CI (see [`require_peer`](super::require_peer)).
    ///
    /// # Panics
    ///
    /// As [`MotoBuilder::start`](super::moto::MotoBuilder::start).
    pub fn start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let recording = dir.path().join("recording.jsonl");
        let moto = MotoServer::builder()
            .env("MOTO_ENABLE_RECORDING", "True")
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .start()?;
        let botocore = Botocore::new()?;
        Some(Self {
            moto,
            botocore,
            recording,
            _dir: dir,
        })
    }

    /// [`start`](Self::start), then the IAM user `user_name` (allowed
    /// everything) gets a key and authentication goes on: every call must
    /// be signed with a key moto issued. The seeding calls are dropped from
    /// the recording.
    pub fn with_user(user_name: &str) -> Option<(Self, MotoAccessKey)> {
        let recorder = Self::start()?;
        let key = recorder.moto.seed_then_authenticate(|moto| {
            moto.create_iam_user(&recorder.botocore, user_name, ALLOW_ALL_POLICY)
        });
        recorder.forget();
        Some((recorder, key))
    }

    /// Empties the recording.
    ///
    /// # Panics
    ///
    /// When moto does not answer 200.
    pub fn forget(&self) {
        let reset = self
            .moto
            .request("POST", "/moto-api/recorder/reset-recording", b"")
            .expect("reset the recording");
        assert_eq!(reset.status, 200, "{}", reset.text());
    }

    /// The AWS query-protocol calls (STS, IAM) moto received since the last
    /// [`forget`](Self::forget), in order. Blank values are kept, so an
    /// empty `TokenCode` would show.
    pub fn calls(&self) -> Vec<RecordedCall> {
        let forms: Vec<BTreeMap<String, String>> = self
            .botocore
            .script(
                r#"
                import base64, json, os, sys, urllib.parse
                calls = []
                if os.path.exists(sys.argv[1]):
                    for line in open(sys.argv[1]):
                        entry = json.loads(line)
                        body = entry.get("body") or ""
                        if entry.get("body_encoded"):
                            body = base64.b64decode(body).decode()
                        form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
                        if "Action" in form:
                            calls.append(form)
                print(json.dumps(calls))
                "#,
            )
            .arg(&self.recording)
            .run()
            .json();
        forms.into_iter().map(RecordedCall).collect()
    }
}

/// One recorded call: its form parameters. `Debug` shows a `TokenCode`
/// only by its length, so an assertion message never shows an MFA code.
pub struct RecordedCall(BTreeMap<String, String>);

impl RecordedCall {
    /// The `Action` parameter (`GetSessionToken`, `AssumeRole`, …).
    pub fn action(&self) -> &str {
        self.get("Action").unwrap_or("")
    }

    /// A form parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Whether the call carries exactly this `TokenCode`: compared here so
    /// that an assertion message never has to show the value.
    pub fn sends_code(&self, code: &str) -> bool {
        self.get("TokenCode") == Some(code)
    }
}

impl fmt::Debug for RecordedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.0 {
            if name == "TokenCode" {
                map.entry(name, &format_args!("<{} characters>", value.len()));
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}
