//! Where MFA codes come from.
//!
//! **In progress**: this has the trait, a fixed code and "no prompt". The
//! terminal prompt, the external-command driver and sharing one prompt per
//! device between concurrent requests come in a later commit of this issue.

use std::fmt;

use session_core::{Error, Result, Secret};

/// Supplies a one-time code for an MFA device.
#[async_trait::async_trait]
pub trait MfaPrompt: Send + Sync + fmt::Debug {
    /// A fresh 6-digit code for device `serial`, requested for `purpose`
    /// (e.g. `session 'dev' (…)`). Each code is used once.
    async fn code(&self, serial: &str, purpose: &str) -> Result<Secret>;
}

/// Fails at once, naming the device: for non-interactive use where no MFA is
/// expected.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMfaPrompt;

#[async_trait::async_trait]
impl MfaPrompt for NoMfaPrompt {
    async fn code(&self, serial: &str, purpose: &str) -> Result<Secret> {
        Err(Error::invalid_input(
            "MFA code",
            format!(
                "{purpose} needs a code for MFA device {serial}, and no MFA prompt is configured"
            ),
        ))
    }
}

/// Always answers with the same code (for scripts that obtained one, and tests).
#[derive(Clone)]
pub struct StaticMfaCode(Secret);

impl StaticMfaCode {
    /// A prompt that answers `code`, which must be 6 digits.
    pub fn new(code: Secret) -> Result<Self> {
        crate::validate::token_code(code.expose())?;
        Ok(Self(code))
    }
}

impl fmt::Debug for StaticMfaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticMfaCode(<redacted>)")
    }
}

#[async_trait::async_trait]
impl MfaPrompt for StaticMfaCode {
    async fn code(&self, _serial: &str, _purpose: &str) -> Result<Secret> {
        Ok(self.0.clone())
    }
}
