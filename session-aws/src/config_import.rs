//! Importing the profiles of the AWS shared config and credentials files
//! (what aws-vault and granted users have) as sessions.
//!
//! The files are read as botocore reads them (the credentials-file sink's
//! parser). Per profile:
//!
//! - `role_arn` with `source_profile` → a chained role under the source's
//!   session (`role_session_name`, `external_id`, `mfa_serial`,
//!   `duration_seconds` carried over);
//! - `sso_session` (with its `[sso-session]` section), or the legacy
//!   `sso_start_url` and `sso_region` in the profile, with `sso_account_id`
//!   and `sso_role_name` → an SSO role;
//! - long-term keys (`aws_access_key_id` and `aws_secret_access_key`, in
//!   either file) → an IAM user with the profile's `mfa_serial`, the keys
//!   copied into the secret store;
//! - `credential_process`, `credential_source`, web identity, temporary
//!   keys, and profiles with settings only → left alone, each reported.
//!
//! Each session is named after its profile and publishes to its own
//! profile `<name>-sessionctl`, so the user's profile stays as it is (AWS
//! tools would read the config's `role_arn` or SSO settings for it before
//! any credentials a session wrote there). A session's id follows from the
//! profile's name, so a second import adds nothing.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use session_core::{Error, Result, Secret, Session, SessionId, SessionType};

use crate::sink::ini::{IniDocument, Section};
use crate::{ChainedRoleConfig, IamUserConfig, SsoRoleConfig, secret_names, validate};

/// The key of [`Session::extra`] recording the origin:
/// `{"tool": "aws-config", "profile": "<name>"}`.
pub const IMPORTED_FROM: &str = "importedFrom";

/// What importing the files would do, profile by profile, sources before
/// the roles assumed from them.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct AwsConfigImport {
    /// Every profile considered.
    pub items: Vec<ProfileImport>,
}

/// One profile in an [`AwsConfigImport`].
#[derive(Debug)]
#[non_exhaustive]
pub struct ProfileImport {
    /// The profile's name.
    pub profile: String,
    /// What the import does with it.
    pub outcome: ProfileOutcome,
}

/// What an import does with one profile.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProfileOutcome {
    /// Added as this session (inactive).
    Add {
        /// The session to insert.
        session: Box<Session>,
        /// Secrets to store for it (an IAM user's keys), by name.
        secrets: Vec<(String, Secret)>,
        /// What the user must still do.
        to_do: Vec<String>,
    },
    /// A session imported from it is already in the workspace.
    AlreadyImported(SessionId),
    /// Not imported, and why.
    NotImported(String),
}

/// Our id for the session of profile `name`: the same on every import.
pub fn aws_config_session_id(name: &str) -> SessionId {
    SessionId::derived("aws-config", name)
}

/// The keys of one profile: the config file's, then the credentials
/// file's over them (as botocore merges them). Values may be secrets.
type Keys = BTreeMap<String, Secret>;

fn read_file(text: &str, which: &str, credentials: bool) -> Result<BTreeMap<String, Keys>> {
    let doc = IniDocument::parse(text)
        .map_err(|e| Error::invalid_input(which, format!("line {}: {}", e.line, e.message)))?;
    let mut out: BTreeMap<String, Keys> = BTreeMap::new();
    for section in doc.sections() {
        let name = if credentials {
            section.name.clone()
        } else if section.name == "default" {
            "default".into()
        } else if let Some(name) = section.name.strip_prefix("profile ") {
            name.trim().to_owned()
        } else if let Some(name) = section.name.strip_prefix("sso-session ") {
            format!("sso-session {}", name.trim())
        } else {
            continue;
        };
        let keys = out.entry(name).or_default();
        for key in KEYS {
            if let Some(value) = value(&doc, &section, key) {
                keys.insert(key.to_owned(), Secret::new(value));
            }
        }
    }
    Ok(out)
}

fn value(doc: &IniDocument, section: &Section, key: &str) -> Option<String> {
    doc.value(section, key)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The keys an import looks at.
const KEYS: [&str; 19] = [
    "region",
    "role_arn",
    "source_profile",
    "role_session_name",
    "external_id",
    "mfa_serial",
    "duration_seconds",
    "credential_source",
    "credential_process",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
    "sso_region",
    "sso_account_id",
    "sso_role_name",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
];

impl AwsConfigImport {
    /// Plans the import of the profiles in `config` (the shared config
    /// file's text) and `credentials` (the shared credentials file's), all
    /// of them or those named in `only` and the profiles they assume roles
    /// from, into a workspace holding `existing`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the file and line botocore could not
    /// read either; a profile named in `only` that neither file has.
    pub fn plan(
        config: &str,
        credentials: &str,
        only: &[String],
        existing: &[Session],
    ) -> Result<Self> {
        let mut profiles = read_file(config, "AWS config file", false)?;
        let sso_sessions: BTreeMap<String, Keys> = profiles
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("sso-session ")?.to_owned(), v.clone())))
            .collect();
        profiles.retain(|k, _| !k.starts_with("sso-session "));
        for (name, keys) in read_file(credentials, "AWS credentials file", true)? {
            profiles.entry(name).or_default().extend(keys);
        }
        let mut wanted: Vec<String> = if only.is_empty() {
            profiles.keys().cloned().collect()
        } else {
            only.to_vec()
        };
        // The sources of the wanted roles, transitively.
        let mut i = 0;
        while i < wanted.len() {
            let name = &wanted[i];
            let keys = profiles.get(name).ok_or_else(|| {
                Error::invalid_input("profile", format!("no profile '{name}' in either file"))
            })?;
            if let Some(source) = keys.get("source_profile").map(|s| s.expose().to_owned())
                && keys.contains_key("role_arn")
                && !wanted.contains(&source)
                && profiles.contains_key(&source)
            {
                wanted.push(source);
            }
            i += 1;
        }
        let mut plan = AwsConfigImport::default();
        let mut pending: Vec<String> = wanted;
        while !pending.is_empty() {
            let before = pending.len();
            let mut next = Vec::new();
            for name in pending {
                let keys = &profiles[&name];
                let source = keys
                    .get("source_profile")
                    .filter(|_| keys.contains_key("role_arn"))
                    .map(|s| s.expose().to_owned());
                let ready = source.as_ref().is_none_or(|s| {
                    *s == name
                        || !profiles.contains_key(s)
                        || plan.items.iter().any(|i| &i.profile == s)
                });
                if !ready {
                    next.push(name);
                    continue;
                }
                let outcome = outcome(&name, keys, &sso_sessions, &plan, existing);
                plan.items.push(ProfileImport {
                    profile: name,
                    outcome,
                });
            }
            if next.len() == before {
                for name in next {
                    plan.items.push(ProfileImport {
                        profile: name,
                        outcome: ProfileOutcome::NotImported(
                            "its chain of source profiles loops back to itself".into(),
                        ),
                    });
                }
                break;
            }
            pending = next;
        }
        Ok(plan)
    }

    /// The sessions to add, in the order to add them.
    pub fn to_add(&self) -> impl Iterator<Item = &Session> {
        self.items.iter().filter_map(|i| match &i.outcome {
            ProfileOutcome::Add { session, .. } => Some(&**session),
            _ => None,
        })
    }

    /// Inserts the sessions (sources first) and stores their secrets.
    ///
    /// # Errors
    ///
    /// The repository's or the store's error; what was added before stays
    /// (a second import adds the rest).
    pub async fn apply(
        &self,
        repository: &dyn session_core::WorkspaceRepository,
        store: &dyn session_core::SecretStore,
    ) -> Result<Vec<Session>> {
        let mut added = Vec::new();
        for item in &self.items {
            let ProfileOutcome::Add {
                session, secrets, ..
            } = &item.outcome
            else {
                continue;
            };
            let stored = repository.insert((**session).clone()).await?;
            for (name, value) in secrets {
                let key = session_core::SecretKey::new(stored.session_id, name)?;
                store.put(&key, value).await?;
            }
            added.push(stored);
        }
        Ok(added)
    }

    /// Whether any session to add has secrets to store.
    pub fn has_secrets(&self) -> bool {
        self.items.iter().any(
            |i| matches!(&i.outcome, ProfileOutcome::Add { secrets, .. } if !secrets.is_empty()),
        )
    }
}

fn get<'a>(keys: &'a Keys, key: &str) -> Option<&'a str> {
    keys.get(key).map(Secret::expose)
}

fn outcome(
    name: &str,
    keys: &Keys,
    sso_sessions: &BTreeMap<String, Keys>,
    plan: &AwsConfigImport,
    existing: &[Session],
) -> ProfileOutcome {
    let id = aws_config_session_id(name);
    if existing.iter().any(|s| s.session_id == id) {
        return ProfileOutcome::AlreadyImported(id);
    }
    let not = |why: &str| ProfileOutcome::NotImported(why.to_owned());
    let mapped = if let Some(role_arn) = get(keys, "role_arn") {
        if get(keys, "credential_source").is_some() {
            return not(
                "credential_source (the environment, EC2 or ECS credentials) is not a session this SDK imports",
            );
        }
        if get(keys, "web_identity_token_file").is_some() {
            return not("web identity roles are not imported");
        }
        let Some(source) = get(keys, "source_profile") else {
            return not("role_arn without source_profile");
        };
        if source == name {
            return not("source_profile names the profile itself");
        }
        let parent = match plan.items.iter().find(|i| i.profile == source) {
            None => {
                return ProfileOutcome::NotImported(format!(
                    "its source_profile '{source}' is in neither file"
                ));
            }
            Some(ProfileImport {
                outcome: ProfileOutcome::NotImported(_),
                ..
            }) => {
                return ProfileOutcome::NotImported(format!(
                    "its source_profile '{source}' is not imported"
                ));
            }
            Some(_) => aws_config_session_id(source),
        };
        chained(role_arn, keys).map(|c| (SessionType::AwsIamRoleChained, c, Some(parent), vec![]))
    } else if get(keys, "sso_session").is_some() || get(keys, "sso_start_url").is_some() {
        sso(keys, sso_sessions).map(|c| (SessionType::AwsSsoRole, c, None, vec![]))
    } else if let (Some(key_id), Some(secret)) = (
        get(keys, "aws_access_key_id"),
        get(keys, "aws_secret_access_key"),
    ) {
        if get(keys, "aws_session_token").is_some() || get(keys, "aws_security_token").is_some() {
            return not("its keys are temporary (aws_session_token): nothing to renew them from");
        }
        let config = IamUserConfig {
            mfa_serial: get(keys, "mfa_serial").map(str::to_owned),
            ..IamUserConfig::default()
        };
        let secrets = vec![
            (
                secret_names::LONG_TERM_ACCESS_KEY_ID.to_owned(),
                Secret::new(key_id),
            ),
            (
                secret_names::LONG_TERM_SECRET_ACCESS_KEY.to_owned(),
                Secret::new(secret),
            ),
        ];
        config
            .validate()
            .map_err(|e| e.to_string())
            .and_then(|()| json(&config))
            .map(|c| (SessionType::AwsIamUser, c, None, secrets))
    } else if get(keys, "credential_process").is_some() {
        return not("credential_process profiles are left alone: the command stays their source");
    } else {
        return not("no credentials: only settings such as region");
    };
    let (session_type, mut config, parent, secrets) = match mapped {
        Ok(m) => m,
        Err(why) => return ProfileOutcome::NotImported(why),
    };
    let mut to_do = Vec::new();
    let publish_to = format!("{name}-sessionctl");
    match validate::profile_name(&publish_to) {
        Ok(()) => {
            if let Value::Object(map) = &mut config {
                map.insert("profile".into(), Value::String(publish_to));
            }
        }
        Err(_) => to_do.push(format!(
            "choose the profile to publish to (`profile`): '{publish_to}' is not one this SDK writes"
        )),
    }
    let session = Session::new(name, session_type).and_then(|mut s| {
        s.session_id = id;
        s.region = get(keys, "region").map(str::to_owned);
        s.parent_session_id = parent;
        s.config.set(&config)?;
        s.extra.insert(
            IMPORTED_FROM.into(),
            serde_json::json!({"tool": "aws-config", "profile": name}),
        );
        s.validate()?;
        Ok(s)
    });
    match session {
        Ok(session) => ProfileOutcome::Add {
            session: Box::new(session),
            secrets,
            to_do,
        },
        Err(e) => ProfileOutcome::NotImported(e.to_string()),
    }
}

fn chained(role_arn: &str, keys: &Keys) -> std::result::Result<Value, String> {
    let mut config = ChainedRoleConfig::new(role_arn);
    config.role_session_name = get(keys, "role_session_name").map(str::to_owned);
    config.external_id = get(keys, "external_id").map(str::to_owned);
    config.mfa_serial = get(keys, "mfa_serial").map(str::to_owned);
    if let Some(seconds) = get(keys, "duration_seconds") {
        config.duration_seconds = Some(
            seconds
                .parse()
                .map_err(|_| format!("duration_seconds '{seconds}' is not a number"))?,
        );
    }
    config.validate().map_err(|e| e.to_string())?;
    json(&config)
}

fn sso(keys: &Keys, sso_sessions: &BTreeMap<String, Keys>) -> std::result::Result<Value, String> {
    let (start_url, region, session_name) = match get(keys, "sso_session") {
        Some(name) => {
            let section = sso_sessions
                .get(name)
                .ok_or_else(|| format!("its sso_session '{name}' has no [sso-session {name}]"))?;
            (
                get(section, "sso_start_url"),
                get(section, "sso_region"),
                Some(name),
            )
        }
        None => (get(keys, "sso_start_url"), get(keys, "sso_region"), None),
    };
    let need = |v: Option<&str>, key: &str| v.map(str::to_owned).ok_or(format!("it has no {key}"));
    let mut config = SsoRoleConfig::new(
        need(start_url, "sso_start_url")?,
        need(region, "sso_region")?,
        need(get(keys, "sso_account_id"), "sso_account_id")?,
        need(get(keys, "sso_role_name"), "sso_role_name")?,
    );
    if let Some(name) = session_name {
        config = config.with_session_name(name);
    }
    config.validate().map_err(|e| e.to_string())?;
    json(&config)
}

fn json(config: &impl Serialize) -> std::result::Result<Value, String> {
    serde_json::to_value(config).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
[default]
region = eu-west-1

[profile base]
region = eu-west-1
mfa_serial = arn:aws:iam::111122223333:mfa/alice

[profile admin]
role_arn = arn:aws:iam::444455556666:role/Admin
source_profile = base
role_session_name = alice
external_id = ext-1
mfa_serial = arn:aws:iam::111122223333:mfa/alice
duration_seconds = 1800

[profile deep]
role_arn = arn:aws:iam::777788889999:role/Deep
source_profile = admin

[sso-session corp]
sso_start_url = https://d-123.awsapps.com/start
sso_region = us-east-1

[profile sso]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = ReadOnly
region = us-west-2

[profile legacy-sso]
sso_start_url = https://d-456.awsapps.com/start
sso_region = eu-central-1
sso_account_id = 210987654321
sso_role_name = Admin

[profile proc]
credential_process = /usr/bin/get-creds

[profile ec2]
role_arn = arn:aws:iam::444455556666:role/Ec2
credential_source = Ec2InstanceMetadata

[profile orphan]
role_arn = arn:aws:iam::444455556666:role/Orphan
source_profile = nowhere

[profile loop-a]
role_arn = arn:aws:iam::444455556666:role/A
source_profile = loop-b

[profile loop-b]
role_arn = arn:aws:iam::444455556666:role/B
source_profile = loop-a
";

    const CREDENTIALS: &str = "\
[base]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

[temp]
aws_access_key_id = ASIAIOSFODNN7EXAMPLE
aws_secret_access_key = x
aws_session_token = y
";

    fn outcome<'a>(plan: &'a AwsConfigImport, name: &str) -> &'a ProfileOutcome {
        &plan
            .items
            .iter()
            .find(|i| i.profile == name)
            .unwrap_or_else(|| panic!("{name} not planned"))
            .outcome
    }

    fn added<'a>(plan: &'a AwsConfigImport, name: &str) -> &'a Session {
        match outcome(plan, name) {
            ProfileOutcome::Add { session, .. } => session,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn reason(plan: &AwsConfigImport, name: &str) -> String {
        match outcome(plan, name) {
            ProfileOutcome::NotImported(why) => why.clone(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn every_kind_of_profile() {
        let plan = AwsConfigImport::plan(CONFIG, CREDENTIALS, &[], &[]).unwrap();
        let base = added(&plan, "base");
        assert_eq!(base.session_type, SessionType::AwsIamUser);
        assert_eq!(
            base.config.get_str("mfaSerial"),
            Some("arn:aws:iam::111122223333:mfa/alice")
        );
        assert_eq!(base.config.get_str("profile"), Some("base-sessionctl"));
        match outcome(&plan, "base") {
            ProfileOutcome::Add { secrets, .. } => {
                let names: Vec<&str> = secrets.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(names, ["aws-access-key-id", "aws-secret-access-key"]);
                assert_eq!(secrets[0].1.expose(), "AKIAIOSFODNN7EXAMPLE");
            }
            _ => unreachable!(),
        }
        let admin = added(&plan, "admin");
        assert_eq!(admin.parent_session_id, Some(base.session_id));
        assert_eq!(admin.config.get_str("roleSessionName"), Some("alice"));
        assert_eq!(admin.config.get_str("externalId"), Some("ext-1"));
        assert_eq!(admin.config.as_map()["durationSeconds"], 1800);
        let deep = added(&plan, "deep");
        assert_eq!(deep.parent_session_id, Some(admin.session_id));
        let order: Vec<&str> = plan.items.iter().map(|i| i.profile.as_str()).collect();
        let at = |n: &str| order.iter().position(|x| *x == n).unwrap();
        assert!(
            at("base") < at("admin") && at("admin") < at("deep"),
            "{order:?}"
        );
        let sso = added(&plan, "sso");
        assert_eq!(
            sso.config.get_str("startUrl"),
            Some("https://d-123.awsapps.com/start")
        );
        assert_eq!(sso.config.get_str("ssoSessionName"), Some("corp"));
        assert_eq!(sso.region.as_deref(), Some("us-west-2"));
        let legacy = added(&plan, "legacy-sso");
        assert_eq!(legacy.config.get_str("ssoRegion"), Some("eu-central-1"));
        assert!(reason(&plan, "proc").contains("credential_process"));
        assert!(reason(&plan, "ec2").contains("credential_source"));
        assert!(reason(&plan, "orphan").contains("'nowhere' is in neither file"));
        assert!(reason(&plan, "loop-a").contains("loops"));
        assert!(reason(&plan, "temp").contains("temporary"));
        assert!(reason(&plan, "default").contains("only settings"));
        assert!(
            !format!("{plan:?}").contains("wJalrXUtnFEMI"),
            "a key in Debug"
        );

        // Only `deep`: its sources come too; a second plan finds them all.
        let only = AwsConfigImport::plan(CONFIG, CREDENTIALS, &["deep".into()], &[]).unwrap();
        let names: Vec<&str> = only.items.iter().map(|i| i.profile.as_str()).collect();
        assert_eq!(names, ["base", "admin", "deep"]);
        let existing: Vec<Session> = only.to_add().cloned().collect();
        let again =
            AwsConfigImport::plan(CONFIG, CREDENTIALS, &["deep".into()], &existing).unwrap();
        assert!(
            again
                .items
                .iter()
                .all(|i| matches!(i.outcome, ProfileOutcome::AlreadyImported(_)))
        );
        let missing = AwsConfigImport::plan(CONFIG, CREDENTIALS, &["nope".into()], &[]);
        assert!(
            missing
                .unwrap_err()
                .to_string()
                .contains("no profile 'nope'")
        );
        let bad = AwsConfigImport::plan("[profile x\nregion = a\n", "", &[], &[]);
        assert!(bad.unwrap_err().to_string().contains("AWS config file"));
    }
}
