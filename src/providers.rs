//! The providers of this build, registered lazily with a
//! [`SessionManager`](crate::SessionManager): each is built from the
//! environment the first time a session of its type is used, so a provider
//! whose environment is wrong (a malformed `AWS_REGION`, say) fails only its
//! own sessions, and a program that never touches AWS never reads AWS
//! settings.
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_sdk::providers::DefaultProviders;
//! use session_sdk::{FsWorkspace, SessionManager};
//! # fn demo() -> session_sdk::Result<()> {
//! let manager = SessionManager::builder()
//!     .repository(Arc::new(FsWorkspace::open_default()?))
//!     .default_providers()
//!     .build()?;
//! # Ok(())
//! # }
//! ```
//!
//! An application that configures a provider itself (its own MFA prompt,
//! sink or device-code prompter) registers that one with
//! [`SessionManagerBuilder::provider`] or
//! [`lazy_providers`](SessionManagerBuilder::lazy_providers), and can still
//! use [`missing_provider_hint`] for the types this build lacks.

use crate::{SessionManagerBuilder, SessionType};

/// Registers every provider this build has a feature for, each built from
/// the environment with default settings on first use, and
/// [`missing_provider_hint`] for the others.
pub trait DefaultProviders {
    /// See the [trait](DefaultProviders).
    fn default_providers(self) -> Self;
}

impl DefaultProviders for SessionManagerBuilder {
    fn default_providers(self) -> Self {
        #[allow(unused_mut)]
        let mut builder = self.missing_provider_hint(missing_provider_hint);
        #[cfg(feature = "aws")]
        {
            builder = builder.lazy_providers(
                session_aws::CredentialProviders::SESSION_TYPES,
                aws::from_env,
            );
        }
        #[cfg(feature = "aws-ssm")]
        {
            builder = builder.lazy_providers([SessionType::AwsSsm], || {
                let provider = session_aws::ssm::SsmProvider::from_env()?;
                Ok(vec![std::sync::Arc::new(provider) as _])
            });
        }
        #[cfg(feature = "azure")]
        {
            builder = builder.lazy_providers([SessionType::Azure], || {
                let provider = session_azure::AzureProvider::builder().build()?;
                Ok(vec![std::sync::Arc::new(provider) as _])
            });
        }
        #[cfg(feature = "redfish-client")]
        {
            builder = builder.lazy_providers([SessionType::Redfish], || {
                Ok(vec![
                    std::sync::Arc::new(session_redfish::client::RedfishProvider::new()) as _,
                ])
            });
        }
        #[cfg(feature = "boundary")]
        {
            builder = builder.lazy_providers([SessionType::Boundary], || {
                Ok(vec![
                    std::sync::Arc::new(session_boundary::BoundaryProvider::new()) as _,
                ])
            });
        }
        builder
    }
}

/// What a program built on session-sdk could do to get a provider for
/// `session_type`, when this build has none: the cargo feature to enable,
/// or that the type is not implemented yet. `None` for types this build
/// provides and for [`SessionType::Other`].
pub fn missing_provider_hint(session_type: &SessionType) -> Option<String> {
    let feature =
        |name: &str, on: bool| (!on).then(|| format!("enable the `{name}` feature of session-sdk"));
    match session_type {
        t if t.is_aws_credentials() => feature("aws", cfg!(feature = "aws")),
        SessionType::AwsSsm => feature("aws-ssm", cfg!(feature = "aws-ssm")),
        SessionType::Azure => feature("azure", cfg!(feature = "azure")),
        SessionType::Redfish => feature("redfish-client", cfg!(feature = "redfish-client")),
        SessionType::Boundary => feature("boundary", cfg!(feature = "boundary")),
        _ => None,
    }
}

#[cfg(feature = "aws")]
mod aws {
    use std::sync::Arc;

    use session_aws::mfa::{SharedMfaPrompt, TerminalMfaPrompt};
    use session_aws::sink::SharedCredentialsFile;
    use session_aws::sso::SsoClientConfig;
    use session_aws::{AwsClientConfig, CredentialProviders};
    use session_core::device_code::StderrPrompter;
    use session_core::{Error, Result, SessionAction};

    /// The four AWS credential providers, publishing to the shared
    /// credentials file, with the STS and SSO settings of the environment;
    /// MFA codes (one prompt per device for the process) and SSO sign-ins
    /// are asked for on the terminal (stderr).
    pub(super) fn from_env() -> Result<Vec<Arc<dyn SessionAction>>> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(std::path::PathBuf::from)
            .ok_or_else(|| {
                Error::invalid_input("HOME", "is not set (the SSO token cache lives under it)")
            })?;
        Ok(CredentialProviders {
            client: AwsClientConfig::from_env()?,
            sso: SsoClientConfig::from_env()?,
            sink: Arc::new(SharedCredentialsFile::from_env()?),
            mfa: Some(Arc::new(SharedMfaPrompt::new(Arc::new(
                TerminalMfaPrompt::new(),
            )))),
            device_prompter: Arc::new(StderrPrompter),
            home,
        }
        .build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_missing_feature_only() {
        let aws = missing_provider_hint(&SessionType::AwsIamUser);
        assert_eq!(aws.is_some(), !cfg!(feature = "aws"), "{aws:?}");
        if let Some(hint) = aws {
            assert!(hint.contains("`aws` feature"), "{hint}");
        }
        let redfish = missing_provider_hint(&SessionType::Redfish);
        assert_eq!(redfish.is_some(), !cfg!(feature = "redfish-client"));
        let ssm = missing_provider_hint(&SessionType::AwsSsm);
        assert_eq!(ssm.is_some(), !cfg!(feature = "aws-ssm"), "{ssm:?}");
        if let Some(hint) = ssm {
            assert!(hint.contains("`aws-ssm` feature"), "{hint}");
        }
        assert_eq!(missing_provider_hint(&SessionType::Other("x".into())), None);
    }

    #[test]
    fn default_providers_build_only_what_is_asked_for() {
        let manager = crate::SessionManager::builder()
            .repository(std::sync::Arc::new(crate::InMemoryWorkspace::new()))
            .default_providers()
            .build()
            .unwrap();
        #[cfg(feature = "redfish-client")]
        assert_eq!(
            manager
                .provider(&SessionType::Redfish)
                .unwrap()
                .session_type(),
            SessionType::Redfish
        );
        #[cfg(feature = "aws-ssm")]
        assert_eq!(
            manager
                .provider(&SessionType::AwsSsm)
                .unwrap()
                .session_type(),
            SessionType::AwsSsm
        );
        #[cfg(feature = "boundary")]
        assert_eq!(
            manager
                .provider(&SessionType::Boundary)
                .unwrap()
                .session_type(),
            SessionType::Boundary
        );
        #[cfg(not(feature = "boundary"))]
        {
            let err = manager.provider(&SessionType::Boundary).unwrap_err();
            assert_eq!(err.category(), "unsupported");
            assert!(err.to_string().contains("`boundary` feature"), "{err}");
        }
        let err = manager
            .provider(&SessionType::Other("custom".into()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "this program does not support custom sessions: no provider is registered"
        );
    }
}
