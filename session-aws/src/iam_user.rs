//! `awsIamUser`: temporary credentials from `sts:GetSessionToken`, signed
//! with the user's long-term access key.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use session_core::{ActionContext, Capabilities, Error, Result, Session, SessionType};

use crate::lifecycle::{CredentialSessionProvider, IssueCredentials, from_sts, sealed};
use crate::mfa::MfaPrompt;
use crate::{AwsClientConfig, AwsCredentials, error, validate};

/// `GetSessionToken` accepts 900 s to 36 h (root users: at most 1 h).
const DURATION: (u32, u32) = (900, 129_600);

/// The settings of an `awsIamUser` session, in its `config`. The long-term
/// access key is **not** here: it is in the secret store
/// ([`secret_names`](crate::secret_names)).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct IamUserConfig {
    /// The MFA device (serial or ARN) to pass to `GetSessionToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_serial: Option<String>,
    /// Lifetime of the session credentials; the service default (12 h) if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
}

impl IamUserConfig {
    /// Sets [`mfa_serial`](Self::mfa_serial).
    pub fn with_mfa_serial(mut self, serial: impl Into<String>) -> Self {
        self.mfa_serial = Some(serial.into());
        self
    }

    /// Sets [`duration_seconds`](Self::duration_seconds).
    pub fn with_duration_seconds(mut self, seconds: u32) -> Self {
        self.duration_seconds = Some(seconds);
        self
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if let Some(serial) = &self.mfa_serial {
            validate::mfa_serial(serial)?;
        }
        if let Some(seconds) = self.duration_seconds {
            validate::duration_seconds("durationSeconds", seconds, DURATION.0, DURATION.1)?;
        }
        Ok(())
    }
}

/// The provider of `awsIamUser` sessions.
///
/// - **start**: `GetSessionToken` (with MFA if `mfaSerial` is set), signed
///   with the long-term key from the secret store; the temporary credentials
///   are stored and published to the sink.
/// - **rotate**: the same call again; the sink entry is replaced in one write.
///   (`GetSessionToken` credentials cannot be revoked; the old ones stay
///   valid until they expire.)
/// - **stop**: withdraws the sink entry and forgets the temporary credentials.
pub type IamUserProvider = CredentialSessionProvider<IamUserIssuer>;

/// How `awsIamUser` sessions get credentials: `sts:GetSessionToken`, signed
/// with the user's long-term access key. Used through [`IamUserProvider`].
#[derive(Debug, Clone)]
pub struct IamUserIssuer {
    client: AwsClientConfig,
    mfa: Arc<dyn MfaPrompt>,
}

impl sealed::Sealed for IamUserIssuer {}

impl sealed::MfaIssuer for IamUserIssuer {
    fn from_parts(client: AwsClientConfig, mfa: Arc<dyn MfaPrompt>) -> Self {
        Self { client, mfa }
    }

    fn mfa_mut(&mut self) -> &mut Arc<dyn MfaPrompt> {
        &mut self.mfa
    }
}

#[async_trait::async_trait]
impl IssueCredentials for IamUserIssuer {
    fn session_type(&self) -> SessionType {
        SessionType::AwsIamUser
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_rotate(true)
    }

    async fn issue(&self, ctx: &ActionContext, session: &Session) -> Result<AwsCredentials> {
        let label = session.label();
        let config: IamUserConfig = session.config.get().map_err(|e| e.in_session(&label))?;
        config.validate().map_err(|e| e.in_session(&label))?;
        let long_term = AwsCredentials::load_long_term(ctx.secrets.as_ref(), session.session_id)
            .await?
            .ok_or_else(|| {
                Error::invalid_input(
                    "access key",
                    format!("{label} has no long-term access key in the secret store"),
                )
            })?;
        let region = self.client.region_for(session.region.as_deref());
        let mut call = self
            .client
            .sts(&region, Some(&long_term))
            .get_session_token()
            .set_duration_seconds(config.duration_seconds.map(|s| s as i32));
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
            .map_err(|e| error::from_sdk("GetSessionToken", &label, e))?;
        let creds = output.credentials().ok_or_else(|| {
            Error::provider("aws-sts", &label, "GetSessionToken returned no credentials")
        })?;
        from_sts(creds)
    }
}
