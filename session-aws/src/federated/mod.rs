//! `awsIamRoleFederated`: a role assumed with a SAML assertion
//! (`sts:AssumeRoleWithSAML`, unsigned).
//!
//! The assertion (the base64 `SAMLResponse` an identity provider POSTs to
//! `https://signin.aws.amazon.com/saml`) comes from a [`SamlAssertionSource`]:
//! the embedding application supplies a browser-backed one; this module ships
//! [`FileSamlSource`] and [`CommandSamlSource`]. The assertion is a bearer
//! credential: it is kept in a [`Secret`](session_core::Secret) and never logged, printed or quoted
//! in an error.
//!
//! ```
//! use session_aws::federated::{AssertionSourceConfig, FederatedRoleConfig};
//! let config = FederatedRoleConfig::new(
//!     "arn:aws:iam::111122223333:role/Federated",
//!     "arn:aws:iam::111122223333:saml-provider/MyIdP",
//! )
//! .with_duration_seconds(7200)
//! .with_assertion_source(AssertionSourceConfig::command("saml-login", ["--idp", "corp"]));
//! config.validate()?;
//! assert_eq!(
//!     serde_json::to_value(&config).unwrap()["assertionSource"]["type"],
//!     "command"
//! );
//! # Ok::<(), session_core::Error>(())
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use session_core::{ActionContext, Capabilities, Error, Result, Session, SessionType};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::lifecycle::{CredentialSessionProvider, IssueCredentials, from_sts, sealed};
use crate::sink::{CredentialSink, NoSink};
use crate::{AwsClientConfig, AwsCredentials, error, validate};

mod assertion;
mod source;

pub use assertion::{SamlAssertion, SamlRole, attributes};
use source::MissingSource;
pub use source::{
    AssertionSourceConfig, CommandSamlSource, DEFAULT_COMMAND_TIMEOUT, FileSamlSource,
    SamlAssertionSource,
};

/// `AssumeRoleWithSAML` accepts 900 s up to the role's maximum (at most 12 h).
const DURATION: (u32, u32) = (900, 43_200);

/// The lifetime when neither the config nor the assertion sets one.
const DEFAULT_DURATION: u32 = 3600;

/// The field name of errors about the assertion's content.
const ASSERTION_FIELD: &str = "SAML assertion";

/// The settings of an `awsIamRoleFederated` session, in its `config`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FederatedRoleConfig {
    /// The role to assume; the assertion must grant it.
    pub role_arn: String,
    /// The IAM SAML provider (`PrincipalArn`) paired with the role in the
    /// assertion.
    pub principal_arn: String,
    /// 900–43200 s (at most the role's maximum). Unset: the assertion's
    /// `SessionDuration`, else 3600. Either way the session ends no later
    /// than the assertion's `SessionNotOnOrAfter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    /// Where assertions come from for this session; unset: the provider's
    /// source ([`FederatedRoleProvider::with_source`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion_source: Option<AssertionSourceConfig>,
}

impl FederatedRoleConfig {
    /// A config assuming `role_arn` through the SAML provider `principal_arn`.
    pub fn new(role_arn: impl Into<String>, principal_arn: impl Into<String>) -> Self {
        Self {
            role_arn: role_arn.into(),
            principal_arn: principal_arn.into(),
            ..Self::default()
        }
    }

    /// Sets [`duration_seconds`](Self::duration_seconds).
    pub fn with_duration_seconds(mut self, seconds: u32) -> Self {
        self.duration_seconds = Some(seconds);
        self
    }

    /// Sets [`assertion_source`](Self::assertion_source).
    pub fn with_assertion_source(mut self, source: AssertionSourceConfig) -> Self {
        self.assertion_source = Some(source);
        self
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        validate::role_arn("roleArn", &self.role_arn)?;
        validate::saml_provider_arn("principalArn", &self.principal_arn)?;
        if let Some(seconds) = self.duration_seconds {
            validate::duration_seconds("durationSeconds", seconds, DURATION.0, DURATION.1)?;
        }
        if let Some(source) = &self.assertion_source {
            source.validate()?;
        }
        Ok(())
    }
}

/// The `DurationSeconds` to ask for: the config's, else the assertion's
/// `SessionDuration`, else 3600; no later than `SessionNotOnOrAfter` (but at
/// least the 900 s STS accepts: STS itself ends the session there).
fn duration_for(
    config: &FederatedRoleConfig,
    assertion: &SamlAssertion,
    now: OffsetDateTime,
    label: &str,
) -> Result<u32> {
    let mut seconds = config
        .duration_seconds
        .or(assertion.session_duration())
        .unwrap_or(DEFAULT_DURATION);
    if let Some(end) = assertion.session_not_on_or_after() {
        let left = (end - now).whole_seconds();
        if left <= 0 {
            return Err(Error::Unauthenticated {
                target: label.to_owned(),
                message: format!(
                    "the IdP session ended at {} (SessionNotOnOrAfter); sign in again",
                    end.format(&Rfc3339).unwrap_or_else(|_| end.to_string())
                ),
            });
        }
        let left = u32::try_from(left).unwrap_or(u32::MAX);
        seconds = seconds.min(left.max(DURATION.0));
    }
    Ok(seconds)
}

/// The provider of `awsIamRoleFederated` sessions.
///
/// - **start**: gets an assertion from the session's `assertionSource` (else
///   the provider's source), checks that it grants the configured
///   `roleArn`/`principalArn` pair (else an input error listing the roles it
///   grants), then calls `AssumeRoleWithSAML` (unsigned) for the config's
///   duration, the assertion's `SessionDuration` or 3600 s, capped by
///   `SessionNotOnOrAfter`; the credentials are stored and published to the
///   sink.
/// - **rotate**: the same with a fresh assertion (an IdP round-trip, so a
///   browser source may show a sign-in); the sink entry is replaced in one
///   write.
/// - **stop**: withdraws the sink entry and forgets the credentials (STS
///   credentials cannot be revoked; they stay valid until they expire).
pub type FederatedRoleProvider = CredentialSessionProvider<FederatedRoleIssuer>;

/// How `awsIamRoleFederated` sessions get credentials:
/// `sts:AssumeRoleWithSAML` with an assertion from a
/// [`SamlAssertionSource`]. Used through [`FederatedRoleProvider`].
#[derive(Debug, Clone)]
pub struct FederatedRoleIssuer {
    client: AwsClientConfig,
    source: Arc<dyn SamlAssertionSource>,
}

impl FederatedRoleProvider {
    /// A provider that publishes to `sink`. Sessions without an
    /// `assertionSource` fail until [`with_source`](Self::with_source) is
    /// called.
    pub fn new(client: AwsClientConfig, sink: Arc<dyn CredentialSink>) -> Self {
        Self {
            issuer: FederatedRoleIssuer {
                client,
                source: Arc::new(MissingSource),
            },
            sink,
        }
    }

    /// A provider that publishes nowhere (secret store only).
    pub fn without_sink(client: AwsClientConfig) -> Self {
        Self::new(client, Arc::new(NoSink))
    }

    /// The source for sessions whose config names none (typically the
    /// application's browser sign-in).
    pub fn with_source(mut self, source: Arc<dyn SamlAssertionSource>) -> Self {
        self.issuer.source = source;
        self
    }
}

impl sealed::Sealed for FederatedRoleIssuer {}

#[async_trait::async_trait]
impl IssueCredentials for FederatedRoleIssuer {
    fn session_type(&self) -> SessionType {
        SessionType::AwsIamRoleFederated
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_rotate(true)
    }

    async fn issue(&self, ctx: &ActionContext, session: &Session) -> Result<AwsCredentials> {
        let label = session.label();
        let config: FederatedRoleConfig = session.config.get().map_err(|e| e.in_session(&label))?;
        config.validate().map_err(|e| e.in_session(&label))?;
        let source = match &config.assertion_source {
            Some(source) => source.build(),
            None => self.source.clone(),
        };
        let b64 = source.assertion(session).await?;
        let assertion = SamlAssertion::parse(&b64).map_err(|e| e.in_session(&label))?;
        if !assertion.grants(&config.role_arn, &config.principal_arn) {
            let granted: Vec<String> = assertion.roles().iter().map(ToString::to_string).collect();
            let mut reason = format!(
                "{label}: the SAML assertion does not grant {} via {}; it grants: {}",
                config.role_arn,
                config.principal_arn,
                granted.join(", ")
            );
            if !assertion.malformed_roles().is_empty() {
                reason.push_str(&format!(
                    " (skipped: {})",
                    assertion.malformed_roles().join("; ")
                ));
            }
            return Err(Error::invalid_input("roleArn", reason));
        }
        let seconds = duration_for(&config, &assertion, ctx.clock.now(), &label)?;
        let region = self.client.region_for(session.region.as_deref());
        let output = self
            .client
            .sts(&region, None)
            .assume_role_with_saml()
            .role_arn(&config.role_arn)
            .principal_arn(&config.principal_arn)
            .saml_assertion(b64.expose().to_owned())
            .duration_seconds(seconds as i32)
            .send()
            .await
            .map_err(|e| error::from_sdk("AssumeRoleWithSAML", &label, e))?;
        let creds = output.credentials().ok_or_else(|| {
            Error::provider(
                "aws-sts",
                &label,
                "AssumeRoleWithSAML returned no credentials",
            )
        })?;
        from_sts(creds)
    }
}

/// What the tests of the parser, the sources and the provider share: a SAML
/// response like the one moto's IdP stand-in produces.
#[cfg(test)]
mod fixtures {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use session_core::{Error, Secret};

    use super::attributes;

    pub(super) const ROLE: &str = "arn:aws:iam::111122223333:role/Federated";
    pub(super) const IDP: &str = "arn:aws:iam::111122223333:saml-provider/MyIdP";

    /// The §7.3 assertion with `attributes` in its `AttributeStatement`.
    pub(super) fn response(attributes: &str) -> String {
        format!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">
<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">http://localhost:3000/</saml:Issuer>
<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">
<saml:Issuer>http://localhost:3000/</saml:Issuer><saml:Subject><saml:NameID>alice@example.com</saml:NameID></saml:Subject>
<saml:AttributeStatement>
{attributes}
</saml:AttributeStatement></saml:Assertion></samlp:Response>"#
        )
    }

    pub(super) fn attr(name: &str, values: &[&str]) -> String {
        let values: String = values
            .iter()
            .map(|v| format!("<saml:AttributeValue>{v}</saml:AttributeValue>"))
            .collect();
        format!(r#"<saml:Attribute Name="{name}">{values}</saml:Attribute>"#)
    }

    pub(super) fn standard() -> String {
        response(&format!(
            "{}{}{}",
            attr(attributes::ROLE, &[&format!("{ROLE},{IDP}")]),
            attr(attributes::ROLE_SESSION_NAME, &["alice@example.com"]),
            attr(attributes::SESSION_DURATION, &["1800"]),
        ))
    }

    pub(super) fn b64(xml: &str) -> Secret {
        Secret::new(BASE64.encode(xml))
    }

    pub(super) fn field_and_text(err: Error) -> (String, String) {
        let text = err.to_string();
        match err {
            Error::InvalidInput { field, .. } => (field, text),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{IDP, ROLE, b64, field_and_text, standard};
    use super::*;
    use session_core::SessionAction;

    #[test]
    fn duration_follows_config_assertion_and_session_end() {
        let now = time::macros::datetime!(2026-01-01 00:00:00 UTC);
        let config = FederatedRoleConfig::new(ROLE, IDP);
        let mut assertion = SamlAssertion::parse(&b64(&standard())).expect("parse");
        assert_eq!(duration_for(&config, &assertion, now, "s").unwrap(), 1800);
        let long = config.clone().with_duration_seconds(7200);
        assert_eq!(duration_for(&long, &assertion, now, "s").unwrap(), 7200);
        assertion.session_duration = None;
        assert_eq!(duration_for(&config, &assertion, now, "s").unwrap(), 3600);
        assertion.session_not_on_or_after = Some(now + time::Duration::minutes(20));
        assert_eq!(duration_for(&long, &assertion, now, "s").unwrap(), 1200);
        assertion.session_not_on_or_after = Some(now + time::Duration::minutes(5));
        assert_eq!(
            duration_for(&long, &assertion, now, "s").unwrap(),
            900,
            "never below what STS accepts"
        );
        assertion.session_not_on_or_after = Some(now);
        let err = duration_for(&long, &assertion, now, "session 'x'").unwrap_err();
        assert_eq!(err.category(), "unauthenticated");
        assert!(err.to_string().contains("session 'x'"), "{err}");
    }

    #[test]
    fn config_round_trips_and_validates() {
        let config = FederatedRoleConfig::new(ROLE, IDP)
            .with_duration_seconds(900)
            .with_assertion_source(AssertionSourceConfig::file("/run/saml.b64"));
        config.validate().expect("valid");
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "roleArn": ROLE,
                "principalArn": IDP,
                "durationSeconds": 900,
                "assertionSource": {"type": "file", "path": "/run/saml.b64"}
            })
        );
        let command: FederatedRoleConfig = serde_json::from_value(serde_json::json!({
            "roleArn": ROLE,
            "principalArn": IDP,
            "assertionSource": {"type": "command", "program": "saml-helper", "args": ["-q"], "timeoutSeconds": 30},
            "profile": "kept-by-the-common-config"
        }))
        .unwrap();
        assert_eq!(
            command.assertion_source,
            Some(AssertionSourceConfig::Command {
                program: "saml-helper".into(),
                args: vec!["-q".into()],
                timeout_seconds: Some(30)
            })
        );
        let source = format!("{:?}", command.assertion_source.unwrap().build());
        assert!(source.contains("30s"), "{source}");

        let swapped = FederatedRoleConfig::new(IDP, ROLE);
        let (field, _) = field_and_text(swapped.validate().unwrap_err());
        assert_eq!(field, "roleArn");
        let bad_idp = FederatedRoleConfig::new(ROLE, "arn:aws:iam::111122223333:role/X");
        assert_eq!(
            field_and_text(bad_idp.validate().unwrap_err()).0,
            "principalArn"
        );
        for seconds in [899, 43_201] {
            let config = FederatedRoleConfig::new(ROLE, IDP).with_duration_seconds(seconds);
            assert_eq!(
                field_and_text(config.validate().unwrap_err()).0,
                "durationSeconds"
            );
        }
        let no_program = FederatedRoleConfig::new(ROLE, IDP)
            .with_assertion_source(AssertionSourceConfig::command("", Vec::<String>::new()));
        assert!(no_program.validate().is_err());
        assert!(
            serde_json::from_value::<FederatedRoleConfig>(serde_json::json!({
                "roleArn": ROLE, "principalArn": IDP, "assertionSource": {"type": "browser"}
            }))
            .is_err()
        );
    }

    #[tokio::test]
    async fn ungranted_role_and_missing_source_fail_before_any_call() {
        use session_core::{InMemorySecretStore, SessionStatus, SystemClock};
        // Nothing listens here: reaching STS would be `Unavailable`.
        let client = AwsClientConfig::builder()
            .endpoint_url("http://127.0.0.1:9")
            .max_attempts(1)
            .build()
            .unwrap();
        let ctx = ActionContext::new(Arc::new(SystemClock), Arc::new(InMemorySecretStore::new()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("response.xml");
        std::fs::write(&file, standard()).unwrap();
        let pending = |config: &FederatedRoleConfig| {
            let mut s = Session::new("saml-bad", SessionType::AwsIamRoleFederated)
                .unwrap()
                .with_config(config)
                .unwrap();
            s.transition(
                SessionStatus::Pending,
                session_core::Clock::now(&SystemClock),
            )
            .unwrap();
            s
        };
        let other = FederatedRoleConfig::new("arn:aws:iam::111122223333:role/Admin", IDP);
        let provider = FederatedRoleProvider::without_sink(client)
            .with_source(Arc::new(FileSamlSource::new(&file)));
        let (field, text) =
            field_and_text(provider.start(&ctx, &pending(&other)).await.unwrap_err());
        assert_eq!(field, "roleArn");
        assert!(text.contains("saml-bad"), "{text}");
        assert!(
            text.contains(&format!("it grants: {ROLE} (via {IDP})")),
            "{text}"
        );

        let provider = FederatedRoleProvider::without_sink(AwsClientConfig::default());
        let (field, text) = field_and_text(
            provider
                .start(&ctx, &pending(&FederatedRoleConfig::new(ROLE, IDP)))
                .await
                .unwrap_err(),
        );
        assert_eq!(field, "assertionSource");
        assert!(text.contains("saml-bad"), "{text}");
    }
}
