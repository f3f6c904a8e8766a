//! Rotation of an `awsIamUser` session's long-term access key, as
//! `aws-vault rotate` does it but without ever leaving the user without a
//! working stored key (feature `iam`).
//!
//! [`AccessKeyRotation::rotate`] takes these steps, each signed with the
//! key that is known to work at that point:
//!
//! 1. `iam:ListAccessKeys` (signed with the current key): IAM allows two
//!    keys per user, so a user who already has two is stopped here, with
//!    the other key named, before anything changes.
//! 2. `iam:CreateAccessKey`. Its secret exists only in this answer, so it
//!    is written at once to the secret store under *pending* names
//!    ([`PENDING_ACCESS_KEY_ID`]): if the process dies from here on, the
//!    next rotation finds it, and finishes that rotation instead of
//!    starting another.
//! 3. `sts:GetCallerIdentity` with the new key, retried (IAM is eventually
//!    consistent: a new key may be refused for some seconds) until
//!    [`AccessKeyRotationBuilder::verify_timeout`]. It must name the same
//!    user. If it never works, the new key is deleted again and the stored
//!    key is left as it was.
//! 4. The new key replaces the stored one ([`AwsCredentials::store_long_term`]),
//!    then the pending copy is removed. If the store fails, the old key is
//!    written back and the new key deleted.
//! 5. The old key is deleted (or made inactive, [`OldKey::Deactivate`]),
//!    signed with the new one and retried for IAM's consistency. A failure
//!    here is not an error: the new key is stored and works, and the
//!    [`RotationReport`] says which old key is still active.
//!
//! Temporary credentials that `GetSessionToken` issued from the old key stay
//! valid until they expire; `sessionctl aws rotate-key` rotates an active
//! session afterwards so that its children use the new key.
//!
//! ```no_run
//! # async fn demo(store: &dyn session_core::SecretStore, session: &session_core::Session)
//! # -> session_core::Result<()> {
//! use session_aws::access_keys::AccessKeyRotation;
//! let rotation = AccessKeyRotation::from_env()?;
//! let report = rotation.rotate(store, session, None).await?;
//! println!("now using {}", report.new_access_key_id);
//! # Ok(()) }
//! ```

use std::time::Duration;

use aws_sdk_iam::config::{BehaviorVersion, Region};
use aws_sdk_iam::types::StatusType;
use session_core::{Error, Result, Secret, SecretKey, SecretStore, Session, SessionType};

use crate::client::{check_endpoint_url, retry_config, timeout_config};
use crate::partition::Partition;
use crate::{AwsClientConfig, AwsCredentials, error};

/// The access key id of a key created by a rotation that has not yet
/// replaced the stored one.
pub const PENDING_ACCESS_KEY_ID: &str = "aws-pending-access-key-id";

/// The secret access key of that pending key.
pub const PENDING_SECRET_ACCESS_KEY: &str = "aws-pending-secret-access-key";

/// The IAM service name in error messages and provider fields.
const SERVICE: &str = "aws-iam";

/// What happens to the old key once the new one is stored and works.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OldKey {
    /// `iam:DeleteAccessKey` (aws-vault's behaviour): nothing is left to
    /// leak.
    #[default]
    Delete,
    /// `iam:UpdateAccessKey … Inactive` (granted's default): it can be
    /// re-activated if something still needs it, and must be deleted later
    /// (IAM allows two keys, so the next rotation needs it gone).
    Deactivate,
}

/// What happened to the old key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OldKeyOutcome {
    /// Deleted.
    Deleted,
    /// Made inactive.
    Deactivated,
    /// Still active, because deleting or deactivating it failed; `reason`
    /// says why (never a secret).
    StillActive {
        /// The error of the last attempt.
        reason: String,
    },
}

/// The result of a rotation. Holds no secret.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RotationReport {
    /// The IAM user, as `GetCallerIdentity` named it (its ARN).
    pub user_arn: String,
    /// The key that was replaced.
    pub old_access_key_id: String,
    /// The key now stored.
    pub new_access_key_id: String,
    /// What was done with the old key.
    pub old_key: OldKeyOutcome,
    /// How many `GetCallerIdentity` calls the new key took to work.
    pub verify_attempts: u32,
    /// Whether this finished an interrupted rotation (its pending key,
    /// created and verified by an earlier run, is the new key) instead of
    /// creating a key.
    pub resumed_pending: bool,
}

/// Rotates long-term access keys. Build with [`AccessKeyRotation::builder`]
/// or [`AccessKeyRotation::from_env`].
#[derive(Clone, Debug)]
pub struct AccessKeyRotation {
    sts: AwsClientConfig,
    iam_endpoint_url: Option<String>,
    verify_timeout: Duration,
    verify_interval: Duration,
    old_key: OldKey,
}

/// Builds an [`AccessKeyRotation`]; [`build`](Self::build) checks.
#[derive(Clone, Debug)]
pub struct AccessKeyRotationBuilder {
    rotation: AccessKeyRotation,
}

impl AccessKeyRotationBuilder {
    /// How STS is reached for `GetCallerIdentity` (endpoint, timeouts).
    pub fn sts(mut self, config: AwsClientConfig) -> Self {
        self.rotation.sts = config;
        self
    }

    /// Sends the IAM calls to this URL (moto, LocalStack) instead of AWS.
    pub fn iam_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.rotation.iam_endpoint_url = Some(url.into());
        self
    }

    /// How long the new key may be refused before the rotation gives up and
    /// deletes it (default 30 s: IAM usually needs a few seconds).
    pub fn verify_timeout(mut self, timeout: Duration) -> Self {
        self.rotation.verify_timeout = timeout;
        self
    }

    /// The pause between two `GetCallerIdentity` attempts, and between two
    /// attempts to delete the old key (default 2 s).
    pub fn verify_interval(mut self, interval: Duration) -> Self {
        self.rotation.verify_interval = interval;
        self
    }

    /// What to do with the old key (default [`OldKey::Delete`]).
    pub fn old_key(mut self, old_key: OldKey) -> Self {
        self.rotation.old_key = old_key;
        self
    }

    /// Checks the settings: an `http(s)://` IAM endpoint, a non-zero
    /// interval no longer than the timeout.
    pub fn build(self) -> Result<AccessKeyRotation> {
        let rotation = self.rotation;
        check_endpoint_url("IAM endpoint URL", rotation.iam_endpoint_url.as_deref())?;
        if rotation.verify_interval.is_zero() {
            return Err(Error::invalid_input(
                "verify interval",
                "must be longer than zero",
            ));
        }
        if rotation.verify_interval > rotation.verify_timeout {
            return Err(Error::invalid_input(
                "verify interval",
                format!(
                    "{:?} is longer than the verify timeout {:?}",
                    rotation.verify_interval, rotation.verify_timeout
                ),
            ));
        }
        Ok(rotation)
    }
}

impl AccessKeyRotation {
    /// A builder with the defaults.
    pub fn builder() -> AccessKeyRotationBuilder {
        AccessKeyRotationBuilder {
            rotation: AccessKeyRotation {
                sts: AwsClientConfig::default(),
                iam_endpoint_url: None,
                verify_timeout: Duration::from_secs(30),
                verify_interval: Duration::from_secs(2),
                old_key: OldKey::Delete,
            },
        }
    }

    /// A builder whose endpoints come from the given variables, as the AWS
    /// SDKs read them: `AWS_ENDPOINT_URL_IAM`, then `AWS_ENDPOINT_URL`, for
    /// IAM; STS as [`AwsClientConfig`] reads it. Empty values count as unset.
    pub fn builder_from_env_iter(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<AccessKeyRotationBuilder> {
        let vars: Vec<(String, String)> = vars.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let get = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut builder = Self::builder()
            .sts(crate::client::AwsClientConfigBuilder::from_env_iter(vars.clone()).build()?);
        if let Some(url) = get("AWS_ENDPOINT_URL_IAM").or_else(|| get("AWS_ENDPOINT_URL")) {
            builder = builder.iam_endpoint_url(url);
        }
        Ok(builder)
    }

    /// [`builder_from_env_iter`](Self::builder_from_env_iter) over the
    /// process environment, built.
    pub fn from_env() -> Result<Self> {
        Self::builder_from_env_iter(std::env::vars())?.build()
    }

    /// Rotates the long-term key of `session` (an `awsIamUser`) kept in
    /// `store`; see the [module](self) for the steps.
    ///
    /// `signer` signs the IAM calls of steps 1 and 2 instead of the stored
    /// key: pass the session's MFA-backed `GetSessionToken` credentials when
    /// the user's policy requires MFA for IAM (credentials from
    /// `GetSessionToken` *without* MFA cannot call IAM at all).
    pub async fn rotate(
        &self,
        store: &dyn SecretStore,
        session: &Session,
        signer: Option<&AwsCredentials>,
    ) -> Result<RotationReport> {
        let label = session.label();
        if session.session_type != SessionType::AwsIamUser {
            return Err(Error::invalid_input(
                "session",
                format!(
                    "{label} is a {} session; only awsIamUser sessions have a long-term access key",
                    session.session_type
                ),
            ));
        }
        let region = self.sts.region_for(session.region.as_deref());
        if let Some(report) = self.resume_pending(store, session, &region).await? {
            return Ok(report);
        }
        let current = AwsCredentials::load_long_term(store, session.session_id)
            .await?
            .ok_or_else(|| {
                Error::invalid_input(
                    "access key",
                    format!("{label} has no long-term access key in the secret store"),
                )
            })?;
        let identity = self.caller_arn(&region, &current, &label).await?;
        let signer = signer.unwrap_or(&current);
        let iam = self.iam(&region, signer);

        // 1. The two-key limit, checked before anything changes.
        let listed = iam
            .list_access_keys()
            .send()
            .await
            .map_err(|e| error::from_sdk_of(SERVICE, "ListAccessKeys", &label, e))?;
        let keys = listed.access_key_metadata();
        if !keys
            .iter()
            .any(|k| k.access_key_id() == Some(current.access_key_id.as_str()))
        {
            return Err(Error::invalid_input(
                "access key",
                format!(
                    "{label}: the stored key {} is not one of the keys IAM lists for the signing user",
                    current.access_key_id
                ),
            ));
        }
        if let Some(other) = keys
            .iter()
            .find(|k| k.access_key_id() != Some(current.access_key_id.as_str()))
        {
            let id = other.access_key_id().unwrap_or("?");
            let status = other.status().map(StatusType::as_str).unwrap_or("unknown");
            return Err(Error::provider(
                SERVICE,
                &label,
                format!(
                    "LimitExceeded: the user already has two access keys (IAM's limit): {} (stored) and {id} ({status}); \
                     delete {id} first (aws iam delete-access-key --access-key-id {id}), then rotate again",
                    current.access_key_id
                ),
            ));
        }

        // 2. The new key, kept as pending before anything else can fail.
        let created = iam
            .create_access_key()
            .send()
            .await
            .map_err(|e| error::from_sdk_of(SERVICE, "CreateAccessKey", &label, e))?;
        let new = created
            .access_key()
            .map(|key| AwsCredentials {
                access_key_id: key.access_key_id().to_owned(),
                secret_access_key: Secret::new(key.secret_access_key().to_owned()),
                session_token: None,
                expiration: None,
            })
            .ok_or_else(|| Error::provider(SERVICE, &label, "CreateAccessKey returned no key"))?;
        if let Err(e) = store_pending(store, session, &new).await {
            return Err(self
                .undo_new_key(
                    &iam,
                    &new,
                    &label,
                    "it could not be kept in the secret store",
                    e,
                )
                .await);
        }

        // 3. The new key must work, for the same user.
        let verify_attempts = match self.verify(&region, &new, &identity, &label).await {
            Ok(attempts) => attempts,
            Err(e) => {
                let _ = delete_pending(store, session).await;
                return Err(self
                    .undo_new_key(&iam, &new, &label, "it never worked", e)
                    .await);
            }
        };

        // 4. Stored in place of the old one.
        if let Err(e) = AwsCredentials::store_long_term(
            store,
            session.session_id,
            &new.access_key_id,
            &new.secret_access_key,
        )
        .await
        {
            // The store may hold half of the new key (its secret was
            // written, its id was not): put the old one back, and check
            // what is there rather than trusting either write's result.
            if !holds(store, session, &current).await {
                let _ = AwsCredentials::store_long_term(
                    store,
                    session.session_id,
                    &current.access_key_id,
                    &current.secret_access_key,
                )
                .await;
            }
            if !holds(store, session, &current).await {
                // Neither key is stored whole: keep the pending copy, which
                // the next rotation finishes, and say so.
                return Err(Error::SecretStore {
                    message: format!(
                        "{label}: storing the new key {} failed ({e}), and so did restoring the old key {}; \
                         both keys are active in IAM and the new one is kept under {PENDING_ACCESS_KEY_ID}: \
                         run the rotation again to finish it",
                        new.access_key_id, current.access_key_id
                    ),
                    source: None,
                });
            }
            let _ = delete_pending(store, session).await;
            return Err(self
                .undo_new_key(&iam, &new, &label, "it could not be stored", e)
                .await);
        }
        delete_pending(store, session).await?;

        // 5. The old key, signed with the new one.
        let old_key = self
            .retire(&self.iam(&region, &new), &current.access_key_id)
            .await;
        Ok(RotationReport {
            user_arn: identity,
            old_access_key_id: current.access_key_id,
            new_access_key_id: new.access_key_id,
            old_key,
            verify_attempts,
            resumed_pending: false,
        })
    }

    /// Finishes an interrupted rotation: a pending key that works replaces
    /// the stored one, which is then retired, and the report of that
    /// rotation is returned. A pending key IAM refuses is forgotten, and one
    /// that is already stored only cleaned up; then `None`, and a new
    /// rotation follows.
    async fn resume_pending(
        &self,
        store: &dyn SecretStore,
        session: &Session,
        region: &str,
    ) -> Result<Option<RotationReport>> {
        let label = session.label();
        let Some(pending) = load_pending(store, session).await? else {
            return Ok(None);
        };
        let stored = AwsCredentials::load_long_term(store, session.session_id).await?;
        if stored
            .as_ref()
            .is_some_and(|s| s.access_key_id == pending.access_key_id)
        {
            // Stored already; only the clean-up was missed.
            delete_pending(store, session).await?;
            return Ok(None);
        }
        let user_arn = match self.caller_arn(region, &pending, &label).await {
            Ok(arn) => arn,
            Err(e @ Error::Unauthenticated { .. }) => {
                tracing::info!(
                    session = %label,
                    access_key_id = %pending.access_key_id,
                    error = %e,
                    "forgetting the pending key of an interrupted rotation: IAM refuses it"
                );
                delete_pending(store, session).await?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        AwsCredentials::store_long_term(
            store,
            session.session_id,
            &pending.access_key_id,
            &pending.secret_access_key,
        )
        .await?;
        delete_pending(store, session).await?;
        tracing::info!(
            session = %label,
            access_key_id = %pending.access_key_id,
            "finished an interrupted access-key rotation"
        );
        let Some(old) = stored else {
            return Ok(None);
        };
        let old_key = self
            .retire(&self.iam(region, &pending), &old.access_key_id)
            .await;
        Ok(Some(RotationReport {
            user_arn,
            old_access_key_id: old.access_key_id,
            new_access_key_id: pending.access_key_id,
            old_key,
            verify_attempts: 1,
            resumed_pending: true,
        }))
    }

    /// `GetCallerIdentity` signed with `creds`: the caller's ARN.
    async fn caller_arn(
        &self,
        region: &str,
        creds: &AwsCredentials,
        label: &str,
    ) -> Result<String> {
        let output = self
            .sts
            .sts(region, Some(creds))
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| error::from_sdk("GetCallerIdentity", label, e))?;
        output
            .arn()
            .map(str::to_owned)
            .ok_or_else(|| Error::provider("aws-sts", label, "GetCallerIdentity returned no ARN"))
    }

    /// Tries the new key until it works (IAM's eventual consistency) or the
    /// timeout passes; the number of attempts it took.
    async fn verify(
        &self,
        region: &str,
        new: &AwsCredentials,
        identity: &str,
        label: &str,
    ) -> Result<u32> {
        let deadline = tokio::time::Instant::now() + self.verify_timeout;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.caller_arn(region, new, label).await {
                Ok(arn) if arn == identity => return Ok(attempts),
                Ok(arn) => {
                    return Err(Error::provider(
                        SERVICE,
                        label,
                        format!(
                            "the new key {} belongs to {arn}, not {identity}",
                            new.access_key_id
                        ),
                    ));
                }
                Err(e)
                    if (matches!(e, Error::Unauthenticated { .. }) || e.is_retryable())
                        && tokio::time::Instant::now() + self.verify_interval < deadline =>
                {
                    tracing::debug!(session = %label, attempt = attempts, "the new key is not accepted yet");
                    tokio::time::sleep(self.verify_interval).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes a new key that must not stay, and builds the error that
    /// says what happened (`why` the key is undone, `cause` the failure).
    async fn undo_new_key(
        &self,
        iam: &aws_sdk_iam::Client,
        new: &AwsCredentials,
        label: &str,
        why: &str,
        cause: Error,
    ) -> Error {
        let deleted = iam
            .delete_access_key()
            .access_key_id(&new.access_key_id)
            .send()
            .await;
        let what_now = match deleted {
            Ok(_) => format!(
                "the new key {} was deleted again; the stored key is unchanged",
                new.access_key_id
            ),
            Err(e) => format!(
                "deleting the new key {} failed too ({}); delete it with aws iam delete-access-key --access-key-id {}; \
                 the stored key is unchanged",
                new.access_key_id,
                error::from_sdk_of(SERVICE, "DeleteAccessKey", label, e),
                new.access_key_id
            ),
        };
        let message = format!("rotation abandoned because {why} ({cause}); {what_now}");
        match cause {
            Error::SecretStore { .. } => Error::SecretStore {
                message: format!("{label}: {message}"),
                source: None,
            },
            cause => Error::Provider {
                provider: SERVICE.into(),
                target: label.to_owned(),
                message,
                retryable: cause.is_retryable(),
                source: None,
            },
        }
    }

    /// Deletes or deactivates the old key, retrying as the new key becomes
    /// usable for IAM; never fails, the outcome says what happened.
    async fn retire(&self, iam: &aws_sdk_iam::Client, old: &str) -> OldKeyOutcome {
        let deadline = tokio::time::Instant::now() + self.verify_timeout;
        loop {
            let result = match self.old_key {
                OldKey::Delete => iam
                    .delete_access_key()
                    .access_key_id(old)
                    .send()
                    .await
                    .map(|_| OldKeyOutcome::Deleted)
                    .map_err(|e| error::from_sdk_of(SERVICE, "DeleteAccessKey", old, e)),
                OldKey::Deactivate => iam
                    .update_access_key()
                    .access_key_id(old)
                    .status(StatusType::Inactive)
                    .send()
                    .await
                    .map(|_| OldKeyOutcome::Deactivated)
                    .map_err(|e| error::from_sdk_of(SERVICE, "UpdateAccessKey", old, e)),
            };
            match result {
                Ok(outcome) => return outcome,
                Err(e) if tokio::time::Instant::now() + self.verify_interval < deadline => {
                    tracing::debug!(access_key_id = %old, error = %e, "retiring the old key failed; retrying");
                    tokio::time::sleep(self.verify_interval).await;
                }
                Err(e) => {
                    return OldKeyOutcome::StillActive {
                        reason: e.to_string(),
                    };
                }
            }
        }
    }

    /// An IAM client signed with `creds`, in the global region of the
    /// partition of `region` (IAM has one endpoint per partition).
    fn iam(&self, region: &str, creds: &AwsCredentials) -> aws_sdk_iam::Client {
        let mut builder = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(Partition::of_region(region).iam_region()))
            .timeout_config(timeout_config(None))
            .retry_config(retry_config(None))
            .credentials_provider(creds.to_sdk("session-aws"));
        if let Some(url) = &self.iam_endpoint_url {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_iam::Client::from_conf(builder.build())
    }
}

/// Whether `store` holds exactly `key` as the session's long-term key.
async fn holds(store: &dyn SecretStore, session: &Session, key: &AwsCredentials) -> bool {
    matches!(
        AwsCredentials::load_long_term(store, session.session_id).await,
        Ok(Some(now)) if now.access_key_id == key.access_key_id
            && now.secret_access_key.expose() == key.secret_access_key.expose()
    )
}

/// Keeps `new` under the pending names, secret first, so a found id always
/// has its secret.
async fn store_pending(
    store: &dyn SecretStore,
    session: &Session,
    new: &AwsCredentials,
) -> Result<()> {
    store
        .put(
            &SecretKey::new(session.session_id, PENDING_SECRET_ACCESS_KEY)?,
            &new.secret_access_key,
        )
        .await?;
    store
        .put(
            &SecretKey::new(session.session_id, PENDING_ACCESS_KEY_ID)?,
            &Secret::new(new.access_key_id.clone()),
        )
        .await
}

/// The pending key, if both halves are there.
async fn load_pending(
    store: &dyn SecretStore,
    session: &Session,
) -> Result<Option<AwsCredentials>> {
    let id = store
        .get(&SecretKey::new(session.session_id, PENDING_ACCESS_KEY_ID)?)
        .await?;
    let secret = store
        .get(&SecretKey::new(
            session.session_id,
            PENDING_SECRET_ACCESS_KEY,
        )?)
        .await?;
    Ok(match (id, secret) {
        (Some(id), Some(secret)) => Some(AwsCredentials {
            access_key_id: id.expose().to_owned(),
            secret_access_key: secret,
            session_token: None,
            expiration: None,
        }),
        _ => None,
    })
}

/// Removes the pending names, id first.
async fn delete_pending(store: &dyn SecretStore, session: &Session) -> Result<()> {
    store
        .delete(&SecretKey::new(session.session_id, PENDING_ACCESS_KEY_ID)?)
        .await?;
    store
        .delete(&SecretKey::new(
            session.session_id,
            PENDING_SECRET_ACCESS_KEY,
        )?)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_is_signed_in_the_partition_of_the_region() {
        let iam = |region| Partition::of_region(region).iam_region();
        assert_eq!(iam("eu-west-1"), "us-east-1");
        assert_eq!(iam("cn-northwest-1"), "cn-north-1");
        assert_eq!(iam("us-gov-east-1"), "us-gov-west-1");
    }

    #[test]
    fn build_checks_the_settings() {
        let err = AccessKeyRotation::builder()
            .iam_endpoint_url("localhost:5000")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("IAM endpoint URL"), "{err}");
        let err = AccessKeyRotation::builder()
            .verify_interval(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("verify interval"), "{err}");
        let err = AccessKeyRotation::builder()
            .verify_timeout(Duration::from_secs(1))
            .verify_interval(Duration::from_secs(2))
            .build()
            .unwrap_err();
        assert!(
            err.to_string().contains("longer than the verify timeout"),
            "{err}"
        );
    }

    #[test]
    fn endpoints_come_from_the_variables() {
        let vars = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let rotation = AccessKeyRotation::builder_from_env_iter(vars(&[
            ("AWS_ENDPOINT_URL", "http://all:1"),
            ("AWS_ENDPOINT_URL_IAM", "http://iam:2"),
        ]))
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(rotation.iam_endpoint_url.as_deref(), Some("http://iam:2"));
        assert_eq!(rotation.sts.endpoint_url(), Some("http://all:1"));
        let rotation = AccessKeyRotation::builder_from_env_iter(vars(&[
            ("AWS_ENDPOINT_URL", "http://all:1"),
            ("AWS_ENDPOINT_URL_IAM", ""),
        ]))
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(rotation.iam_endpoint_url.as_deref(), Some("http://all:1"));
    }
}
