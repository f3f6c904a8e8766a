//! `awsIamRoleChained`: a role assumed with another session's credentials.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use session_core::{ActionContext, Capabilities, Error, Result, Session, SessionType};

use crate::lifecycle::{CredentialSessionProvider, IssueCredentials, from_sts, sealed};
use crate::mfa::MfaPrompt;
use crate::{AwsClientConfig, AwsCredentials, error, validate};

/// Default and maximum lifetime: role chaining (a temporary signer) caps
/// `AssumeRole` at 1 hour.
const CHAINED_MAX_SECONDS: u32 = 3600;

/// The settings of an `awsIamRoleChained` session, in its `config`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ChainedRoleConfig {
    /// The role to assume.
    pub role_arn: String,
    /// Shown in CloudTrail and the assumed-role ARN; defaults to the session
    /// name with disallowed characters replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_session_name: Option<String>,
    /// The external id the role's trust policy asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// An MFA device to pass to `AssumeRole`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_serial: Option<String>,
    /// 900–3600 s (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    /// Session tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Tags that pass on to roles assumed from this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    /// The `SourceIdentity` to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
}

impl ChainedRoleConfig {
    /// A config for `role_arn` with defaults for the rest.
    pub fn new(role_arn: impl Into<String>) -> Self {
        Self {
            role_arn: role_arn.into(),
            ..Self::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        validate::role_arn("roleArn", &self.role_arn)?;
        if let Some(name) = &self.role_session_name {
            validate::role_session_name(name)?;
        }
        if let Some(id) = &self.external_id {
            validate::external_id(id)?;
        }
        if let Some(serial) = &self.mfa_serial {
            validate::mfa_serial(serial)?;
        }
        if let Some(seconds) = self.duration_seconds {
            validate::duration_seconds("durationSeconds", seconds, 900, CHAINED_MAX_SECONDS)?;
        }
        validate::tags(self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        if let Some(key) = self
            .transitive_tag_keys
            .iter()
            .find(|k| !self.tags.contains_key(*k))
        {
            return Err(Error::invalid_input(
                "transitiveTagKeys",
                format!("{key:?} is not one of the session's tags"),
            ));
        }
        if let Some(identity) = &self.source_identity {
            validate::source_identity(identity)?;
        }
        Ok(())
    }
}

/// The provider of `awsIamRoleChained` sessions.
///
/// - **start**: the manager starts the parent first (any AWS credential
///   session); then `AssumeRole` signed with the parent's issued credentials
///   (≤ 1 h: chaining caps it), stored and published to the sink.
/// - **rotate**: `AssumeRole` again; the sink entry is replaced in one write.
/// - **stop**: withdraws the entry and forgets the credentials; the parent is
///   left running.
pub type ChainedRoleProvider = CredentialSessionProvider<ChainedRoleIssuer>;

/// How `awsIamRoleChained` sessions get credentials: `sts:AssumeRole`,
/// signed with the parent session's issued credentials. Used through
/// [`ChainedRoleProvider`].
#[derive(Debug, Clone)]
pub struct ChainedRoleIssuer {
    client: AwsClientConfig,
    mfa: Arc<dyn MfaPrompt>,
}

impl sealed::Sealed for ChainedRoleIssuer {}

impl sealed::MfaIssuer for ChainedRoleIssuer {
    fn from_parts(client: AwsClientConfig, mfa: Arc<dyn MfaPrompt>) -> Self {
        Self { client, mfa }
    }

    fn mfa_mut(&mut self) -> &mut Arc<dyn MfaPrompt> {
        &mut self.mfa
    }
}

#[async_trait::async_trait]
impl IssueCredentials for ChainedRoleIssuer {
    fn session_type(&self) -> SessionType {
        SessionType::AwsIamRoleChained
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_rotate(true)
            .with_requires_parent(true)
    }

    async fn issue(&self, ctx: &ActionContext, session: &Session) -> Result<AwsCredentials> {
        let label = session.label();
        let config: ChainedRoleConfig = session.config.get().map_err(|e| e.in_session(&label))?;
        config.validate().map_err(|e| e.in_session(&label))?;
        let parent = ctx.parent.as_ref().ok_or_else(|| {
            Error::invalid_input(
                "parentSessionId",
                format!("{label} is a chained role and needs a parent session"),
            )
        })?;
        let signer = AwsCredentials::of_parent(ctx.secrets.as_ref(), parent, &label).await?;
        let role_session_name = config
            .role_session_name
            .clone()
            .unwrap_or_else(|| validate::session_name_from(&session.session_name));
        let region = self.client.region_for(session.region.as_deref());
        let mut call = self
            .client
            .sts(&region, Some(&signer))
            .assume_role()
            .role_arn(&config.role_arn)
            .role_session_name(role_session_name)
            .duration_seconds(config.duration_seconds.unwrap_or(CHAINED_MAX_SECONDS) as i32)
            .set_external_id(config.external_id.clone())
            .set_source_identity(config.source_identity.clone());
        for (key, value) in &config.tags {
            call = call.tags(
                aws_sdk_sts::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|e| Error::invalid_input("tags", e.to_string()))?,
            );
        }
        for key in &config.transitive_tag_keys {
            call = call.transitive_tag_keys(key);
        }
        if let Some(serial) = &config.mfa_serial {
            let code = self.mfa.code(serial, &label).await?;
            validate::prompted_token_code(code.expose(), serial, &label)?;
            call = call
                .serial_number(serial)
                .token_code(code.expose().to_owned());
        }
        let output = call
            .send()
            .await
            .map_err(|e| error::from_sdk("AssumeRole", &label, e))?;
        let creds = output.credentials().ok_or_else(|| {
            Error::provider("aws-sts", &label, "AssumeRole returned no credentials")
        })?;
        from_sts(creds)
    }
}
