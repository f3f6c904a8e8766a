//! Leapp's AWS session types as ours, for
//! [`session_core::import::leapp::plan`].

use serde::Serialize;
use serde_json::Value;
use session_core::SessionType;
use session_core::import::leapp::{
    KeychainSecret, LeappMapper, LeappSession, LeappWorkspace, Mapped,
};

use crate::{ChainedRoleConfig, FederatedRoleConfig, IamUserConfig, SsoRoleConfig, validate};

/// Maps Leapp's `awsIamUser`, `awsIamRoleChained`, `awsIamRoleFederated`
/// and `awsSsoRole` sessions:
///
/// - the named profile becomes the session's `profile`, the MFA device an
///   IAM user's `mfaSerial`, a chained role keeps its parent and role
///   session name, a federated role its SAML provider as `principalArn`;
/// - an SSO role's account and role come from Leapp's
///   `arn:aws:iam::<account>/<role>` form, its start URL and region from
///   the integration;
/// - an IAM user's access key is named as secrets to copy from Leapp's
///   keychain (keytar accounts `<id>-iam-user-aws-session-access-key-id`
///   and `…-secret-access-key`);
/// - how a federated role gets its SAML assertion is left to do (Leapp
///   signed in at the IdP URL in a window of its own).
#[derive(Debug, Clone, Copy, Default)]
pub struct LeappAwsMapper;

const TYPES: [&str; 4] = [
    "awsIamUser",
    "awsIamRoleChained",
    "awsIamRoleFederated",
    "awsSsoRole",
];

impl LeappMapper for LeappAwsMapper {
    fn leapp_types(&self) -> &[&str] {
        &TYPES
    }

    fn map(&self, ws: &LeappWorkspace, leapp: &LeappSession) -> Result<Mapped, String> {
        let (session_type, config, to_do) = match leapp.session_type.as_str() {
            "awsIamUser" => {
                let config = IamUserConfig {
                    mfa_serial: leapp.mfa_device.clone().filter(|s| !s.is_empty()),
                    ..IamUserConfig::default()
                };
                config.validate().map_err(|e| e.to_string())?;
                let keys = [
                    (
                        "iam-user-aws-session-access-key-id",
                        crate::secret_names::LONG_TERM_ACCESS_KEY_ID,
                    ),
                    (
                        "iam-user-aws-session-secret-access-key",
                        crate::secret_names::LONG_TERM_SECRET_ACCESS_KEY,
                    ),
                ];
                let mut mapped = Mapped::new(SessionType::AwsIamUser, json(&config)?);
                for (leapp_name, ours) in keys {
                    mapped = mapped.with_secret(KeychainSecret::new(
                        format!("{}-{leapp_name}", leapp.session_id),
                        ours,
                    ));
                }
                return profile(ws, leapp, mapped);
            }
            "awsIamRoleChained" => {
                let mut config = ChainedRoleConfig::new(required(&leapp.role_arn, "roleArn")?);
                config.role_session_name = leapp.role_session_name.clone();
                config.validate().map_err(|e| e.to_string())?;
                (SessionType::AwsIamRoleChained, json(&config)?, None)
            }
            "awsIamRoleFederated" => {
                let config = FederatedRoleConfig::new(
                    required(&leapp.role_arn, "roleArn")?,
                    required(&leapp.idp_arn, "idpArn")?,
                );
                config.validate().map_err(|e| e.to_string())?;
                let idp = leapp
                    .idp_url_id
                    .as_deref()
                    .and_then(|id| ws.idp_url(id))
                    .ok_or("its IdP URL is not in the Leapp workspace")?;
                let to_do = format!(
                    "tell it where SAML assertions come from (`assertionSource`: a file or a \
                     command); Leapp signed in at {} in a window of its own",
                    idp.url
                );
                (
                    SessionType::AwsIamRoleFederated,
                    json(&config)?,
                    Some(to_do),
                )
            }
            "awsSsoRole" => {
                let (account, role) = sso_account_and_role(required(&leapp.role_arn, "roleArn")?)?;
                let integration = leapp
                    .aws_sso_configuration_id
                    .as_deref()
                    .and_then(|id| ws.aws_sso_integration(id))
                    .ok_or("its AWS SSO integration is not in the Leapp workspace")?;
                let config =
                    SsoRoleConfig::new(&integration.portal_url, &integration.region, account, role);
                config.validate().map_err(|e| e.to_string())?;
                (SessionType::AwsSsoRole, json(&config)?, None)
            }
            other => return Err(format!("'{other}' is not an AWS type")),
        };
        let mut mapped = Mapped::new(session_type, config);
        if let Some(to_do) = to_do {
            mapped = mapped.with_to_do(to_do);
        }
        profile(ws, leapp, mapped)
    }
}

/// Sets the session's `profile` to Leapp's named profile.
fn profile(
    ws: &LeappWorkspace,
    leapp: &LeappSession,
    mut mapped: Mapped,
) -> Result<Mapped, String> {
    let Some(id) = &leapp.profile_id else {
        return Ok(mapped);
    };
    let name = &ws
        .profile(id)
        .ok_or_else(|| format!("its named profile {id} is not in the Leapp workspace"))?
        .name;
    if validate::profile_name(name).is_err() {
        return Ok(mapped.with_to_do(format!(
            "Leapp's profile name '{name}' is not one this SDK writes; it publishes to a \
             profile named after the session until `profile` is set"
        )));
    }
    if let Value::Object(map) = &mut mapped.config {
        map.insert("profile".into(), Value::String(name.clone()));
    }
    Ok(mapped)
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, String> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("it has no {field}"))
}

fn json(config: &impl Serialize) -> Result<Value, String> {
    serde_json::to_value(config).map_err(|e| e.to_string())
}

/// Leapp's SSO `roleArn`, `arn:aws:iam::<12-digit account>/<role name>`.
fn sso_account_and_role(arn: &str) -> Result<(&str, &str), String> {
    let bad = || format!("its roleArn '{arn}' is not Leapp's arn:aws:iam::<account>/<role> form");
    let rest = arn.strip_prefix("arn:aws:iam::").ok_or_else(bad)?;
    let (account, role) = rest.split_once('/').ok_or_else(bad)?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) || role.is_empty() {
        return Err(bad());
    }
    Ok((account, role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sso_pseudo_arns() {
        assert_eq!(
            sso_account_and_role("arn:aws:iam::123456789012/AdministratorAccess"),
            Ok(("123456789012", "AdministratorAccess"))
        );
        for bad in [
            "arn:aws:iam::123456789012:role/Admin",
            "arn:aws:iam::1234/Admin",
            "arn:aws:iam::123456789012/",
            "123456789012/Admin",
        ] {
            assert!(sso_account_and_role(bad).is_err(), "{bad}");
        }
    }
}
