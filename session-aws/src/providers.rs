//! The four AWS credential providers built together, as a program
//! registers them: one STS configuration, one sink, one MFA prompt and one
//! device-code prompter shared by all.

use std::path::PathBuf;
use std::sync::Arc;

use session_core::device_code::DeviceCodePrompter;
use session_core::{SessionAction, SessionType};

use crate::mfa::MfaPrompt;
use crate::sink::CredentialSink;
use crate::sso::SsoClientConfig;
use crate::{
    AwsClientConfig, ChainedRoleProvider, FederatedRoleProvider, IamUserProvider, SsoRoleProvider,
};

/// What the four credential providers share; [`build`](Self::build) makes
/// them.
///
/// ```no_run
/// # fn demo(home: std::path::PathBuf) -> session_core::Result<()> {
/// use std::sync::Arc;
/// use session_aws::sink::SharedCredentialsFile;
/// use session_aws::sso::{SsoClientConfig, StderrPrompter};
/// use session_aws::{AwsClientConfig, CredentialProviders};
///
/// let providers = CredentialProviders {
///     client: AwsClientConfig::from_env()?,
///     sso: SsoClientConfig::from_env()?,
///     sink: Arc::new(SharedCredentialsFile::from_env()?),
///     mfa: None,
///     device_prompter: Arc::new(StderrPrompter),
///     home,
/// }
/// .build();
/// assert_eq!(providers.len(), CredentialProviders::SESSION_TYPES.len());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct CredentialProviders {
    /// STS endpoint, region, retries and time-outs.
    pub client: AwsClientConfig,
    /// The SSO-OIDC and portal endpoints (for `awsSsoRole`).
    pub sso: SsoClientConfig,
    /// Where started sessions publish their credentials.
    pub sink: Arc<dyn CredentialSink>,
    /// Asks for MFA codes (IAM user and chained role sessions with an MFA
    /// device); without one such sessions fail with a clear error.
    pub mfa: Option<Arc<dyn MfaPrompt>>,
    /// Shows SSO device sign-ins.
    pub device_prompter: Arc<dyn DeviceCodePrompter>,
    /// The home folder, under which the SSO token cache lives
    /// (`~/.aws/sso/cache`, shared with the AWS CLI).
    pub home: PathBuf,
}

impl CredentialProviders {
    /// The session types of the providers [`build`](Self::build) makes.
    pub const SESSION_TYPES: [SessionType; 4] = [
        SessionType::AwsIamUser,
        SessionType::AwsIamRoleChained,
        SessionType::AwsIamRoleFederated,
        SessionType::AwsSsoRole,
    ];

    /// The IAM user, chained role, federated role and SSO role providers.
    pub fn build(self) -> Vec<Arc<dyn SessionAction>> {
        let mut iam_user = IamUserProvider::new(self.client.clone(), self.sink.clone());
        let mut chained = ChainedRoleProvider::new(self.client.clone(), self.sink.clone());
        if let Some(mfa) = self.mfa {
            iam_user = iam_user.with_mfa(mfa.clone());
            chained = chained.with_mfa(mfa);
        }
        vec![
            Arc::new(iam_user),
            Arc::new(chained),
            Arc::new(FederatedRoleProvider::new(self.client, self.sink.clone())),
            Arc::new(SsoRoleProvider::new(
                self.sso,
                self.sink,
                self.device_prompter,
                self.home,
            )),
        ]
    }
}
