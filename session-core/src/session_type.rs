//! The kinds of session.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// What kind of session this is, which decides the provider that handles it.
///
/// The serialized names of the five cloud-credential types are Leapp's
/// (`awsIamUser`, …, `azure`), so files and scripts read the same in both.
///
/// A name this version does not know is kept as [`SessionType::Other`] rather
/// than rejected: a workspace written by a newer version, or holding sessions
/// of a custom provider, loads and saves without losing them. Register a
/// provider for `SessionType::Other("myKind".into())` to handle a custom kind.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SessionType {
    /// AWS role assumed with a SAML assertion (`awsIamRoleFederated`).
    AwsIamRoleFederated,
    /// AWS IAM user with a long-lived access key (`awsIamUser`).
    AwsIamUser,
    /// AWS role assumed with another session's credentials (`awsIamRoleChained`).
    AwsIamRoleChained,
    /// AWS IAM Identity Center (SSO) role (`awsSsoRole`).
    AwsSsoRole,
    /// Microsoft Entra ID / Azure (`azure`).
    Azure,
    /// AWS Systems Manager Session Manager session (`awsSsm`).
    AwsSsm,
    /// Redfish SessionService login session (`redfish`).
    Redfish,
    /// HashiCorp Boundary session (`boundary`).
    Boundary,
    /// A kind this version does not know, kept verbatim.
    Other(String),
}

impl SessionType {
    /// Every kind this version knows, in documentation order.
    pub const KNOWN: [SessionType; 8] = [
        SessionType::AwsIamRoleFederated,
        SessionType::AwsIamUser,
        SessionType::AwsIamRoleChained,
        SessionType::AwsSsoRole,
        SessionType::Azure,
        SessionType::AwsSsm,
        SessionType::Redfish,
        SessionType::Boundary,
    ];

    /// The serialized name, e.g. `awsIamUser`.
    pub fn as_str(&self) -> &str {
        match self {
            SessionType::AwsIamRoleFederated => "awsIamRoleFederated",
            SessionType::AwsIamUser => "awsIamUser",
            SessionType::AwsIamRoleChained => "awsIamRoleChained",
            SessionType::AwsSsoRole => "awsSsoRole",
            SessionType::Azure => "azure",
            SessionType::AwsSsm => "awsSsm",
            SessionType::Redfish => "redfish",
            SessionType::Boundary => "boundary",
            SessionType::Other(name) => name,
        }
    }

    /// Parses a serialized name; unknown names become [`SessionType::Other`].
    pub fn from_name(name: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|t| t.as_str() == name)
            .cloned()
            .unwrap_or_else(|| SessionType::Other(name.to_owned()))
    }

    /// Whether this is one of the AWS credential types (a possible parent of
    /// a chained role).
    pub fn is_aws_credentials(&self) -> bool {
        matches!(
            self,
            SessionType::AwsIamRoleFederated
                | SessionType::AwsIamUser
                | SessionType::AwsIamRoleChained
                | SessionType::AwsSsoRole
        )
    }
}

impl fmt::Display for SessionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SessionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SessionType {
    type Err = Error;

    /// Parses a name; unlike [`SessionType::from_name`] an empty name is an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(Error::invalid_input("session type", "must not be empty"));
        }
        Ok(Self::from_name(s))
    }
}

impl Serialize for SessionType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SessionType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        if name.is_empty() {
            return Err(serde::de::Error::custom("session type must not be empty"));
        }
        Ok(Self::from_name(&name))
    }
}
