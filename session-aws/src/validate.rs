//! Checks of inputs before any call, with errors that name the field.
//!
//! The STS test peer (moto) validates almost nothing and the Rust SDK sends
//! requests without client-side checks, so a bad value would otherwise
//! surface as an obscure service error, or not at all.

use session_core::{Error, Result};

fn chars_ok(value: &str, extra: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c))
}

fn check(field: &str, ok: bool, value: &str, rule: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            field,
            format!("{value:?} must be {rule}"),
        ))
    }
}

/// `RoleSessionName`: 2–64 characters from `[A-Za-z0-9_+=,.@-]`.
pub fn role_session_name(value: &str) -> Result<()> {
    let len = value.chars().count();
    check(
        "roleSessionName",
        (2..=64).contains(&len) && chars_ok(value, "+=,.@-"),
        value,
        "2-64 characters from A-Z a-z 0-9 _ + = , . @ -",
    )
}

/// A default `RoleSessionName` from any text: disallowed characters become
/// `-`, cut to 64, padded to 2.
pub fn session_name_from(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while name.len() < 2 {
        name.push('-');
    }
    name
}

/// An MFA device: a hardware serial or `arn:aws:iam::<account>:mfa/<name>`,
/// 9–256 characters from `[\w+=/:,.@-]`.
pub fn mfa_serial(value: &str) -> Result<()> {
    let len = value.chars().count();
    check(
        "mfaSerial",
        (9..=256).contains(&len) && chars_ok(value, "+=/:,.@-"),
        value,
        "a device serial or arn:aws:iam::<account>:mfa/<name> (9-256 characters)",
    )
}

/// An MFA code: exactly 6 digits. The value is not echoed in the error.
pub fn token_code(value: &str) -> Result<()> {
    if value.len() == 6 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::invalid_input("MFA code", "must be exactly 6 digits"))
    }
}

/// An MFA code a prompt answered for `serial` on behalf of `label` (a
/// session): [`token_code`], with an error that says which session and
/// device it was for. The value is not echoed.
pub fn prompted_token_code(value: &str, serial: &str, label: &str) -> Result<()> {
    token_code(value).map_err(|_| {
        Error::invalid_input(
            "MFA code",
            format!(
                "{label}: the code given for MFA device {serial} is not 6 digits (the value is \
                 not shown); enter the code the device shows now"
            ),
        )
    })
}

/// `ExternalId`: 2–1224 characters from `[\w+=,.@:/-]`.
pub fn external_id(value: &str) -> Result<()> {
    let len = value.chars().count();
    check(
        "externalId",
        (2..=1224).contains(&len) && chars_ok(value, "+=,.@:/-"),
        value,
        "2-1224 characters from A-Z a-z 0-9 _ + = , . @ : / -",
    )
}

/// `SourceIdentity`: 2–64 characters from `[\w+=,.@-]`.
pub fn source_identity(value: &str) -> Result<()> {
    let len = value.chars().count();
    check(
        "sourceIdentity",
        (2..=64).contains(&len) && chars_ok(value, "+=,.@-"),
        value,
        "2-64 characters from A-Z a-z 0-9 _ + = , . @ -",
    )
}

/// Session tags: at most 50; keys 1–128 characters, values at most 256.
pub fn tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<()> {
    let mut count = 0;
    for (key, value) in tags {
        count += 1;
        let key_len = key.chars().count();
        if !(1..=128).contains(&key_len) {
            return Err(Error::invalid_input(
                "tags",
                format!("tag key {key:?} must be 1-128 characters"),
            ));
        }
        if value.chars().count() > 256 {
            return Err(Error::invalid_input(
                "tags",
                format!("the value of tag {key:?} is longer than 256 characters"),
            ));
        }
    }
    if count > 50 {
        return Err(Error::invalid_input(
            "tags",
            format!("{count} tags; at most 50"),
        ));
    }
    Ok(())
}

/// `DurationSeconds` within `min..=max`.
pub fn duration_seconds(field: &str, value: u32, min: u32, max: u32) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid_input(
            field,
            format!("{value} seconds is outside {min}-{max}"),
        ))
    }
}

/// An IAM role ARN: `arn:<partition>:iam::<12-digit account>:role/<path/name>`.
pub fn role_arn(field: &str, value: &str) -> Result<()> {
    iam_arn(field, value, "role/")
}

/// A SAML provider ARN: `arn:<partition>:iam::<account>:saml-provider/<name>`.
pub fn saml_provider_arn(field: &str, value: &str) -> Result<()> {
    iam_arn(field, value, "saml-provider/")
}

fn iam_arn(field: &str, value: &str, resource: &str) -> Result<()> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && matches!(
            parts[1],
            "aws" | "aws-us-gov" | "aws-cn" | "aws-iso" | "aws-iso-b"
        )
        && parts[2] == "iam"
        && parts[3].is_empty()
        && account_id(parts[4]).is_ok()
        && parts[5].starts_with(resource)
        && parts[5].len() > resource.len()
        && !parts[5].ends_with('/');
    check(
        field,
        ok,
        value,
        &format!("an ARN like arn:aws:iam::123456789012:{resource}Name"),
    )
}

/// A 12-digit AWS account id.
pub fn account_id(value: &str) -> Result<()> {
    check(
        "accountId",
        value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()),
        value,
        "12 digits",
    )
}

/// An access key id: 16–128 upper-case letters and digits (`AKIA…`, `ASIA…`).
pub fn access_key_id(value: &str) -> Result<()> {
    let len = value.len();
    check(
        "accessKeyId",
        (16..=128).contains(&len)
            && value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        value,
        "16-128 upper-case letters and digits, like AKIA…",
    )
}

/// A profile name both botocore and the Rust SDK read back: 1–64 characters
/// from `[A-Za-z0-9_.@+-]` (no spaces, brackets, `#`, `;` or `=`), and not
/// `default`-prefixed forms botocore treats specially (`profile …`).
pub fn profile_name(value: &str) -> Result<()> {
    let len = value.chars().count();
    check(
        "profile",
        (1..=64).contains(&len) && chars_ok(value, ".@+-") && !value.starts_with("profile"),
        value,
        "1-64 characters from A-Z a-z 0-9 _ . @ + - (not starting with \"profile\")",
    )
}

// IAM Identity Center (SSO) sign-ins and roles.

/// An AWS access portal URL: `http(s)://`, no blanks.
pub(crate) fn start_url(value: &str) -> Result<()> {
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() > "https://".len()
        && value.len() <= 1024
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "startUrl",
            format!("{value:?} must be a URL like https://d-1234567890.awsapps.com/start"),
        ))
    }
}

/// A region name like `eu-west-1`.
pub(crate) fn sso_region(value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "ssoRegion",
            format!("{value:?} is not a region name like us-east-1"),
        ))
    }
}

/// An `sso-session` name both INI readers keep intact: 1–64 characters,
/// no blanks, brackets, `#`, `;` or `=`.
pub(crate) fn sso_session_name(value: &str) -> Result<()> {
    let len = value.chars().count();
    let ok = (1..=64).contains(&len)
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "[]#;=".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "ssoSessionName",
            format!("{value:?} must be 1-64 characters without blanks, brackets, #, ; or ="),
        ))
    }
}

/// An IAM Identity Center permission set (role) name: 1–64 characters from `[\w+=,.@-]`.
pub(crate) fn sso_role_name(value: &str) -> Result<()> {
    let len = value.chars().count();
    let ok = (1..=64).contains(&len)
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "roleName",
            format!("{value:?} must be 1-64 characters from A-Z a-z 0-9 _ + = , . @ -"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_session_names() {
        assert!(role_session_name("ok").is_ok());
        assert!(role_session_name("alice@example.com").is_ok());
        assert!(role_session_name("a").is_err());
        assert!(role_session_name(&"x".repeat(65)).is_err());
        let err = role_session_name("has space").unwrap_err().to_string();
        assert!(
            err.contains("roleSessionName") && err.contains("has space"),
            "{err}"
        );
        assert_eq!(session_name_from("dev admin/ü"), "dev-admin--");
        assert_eq!(session_name_from("x"), "x-");
        assert_eq!(session_name_from(&"y".repeat(80)).len(), 64);
        assert!(role_session_name(&session_name_from("any thing at all")).is_ok());
    }

    #[test]
    fn mfa_inputs() {
        assert!(mfa_serial("arn:aws:iam::123456789012:mfa/alice").is_ok());
        assert!(mfa_serial("GAHT12345678").is_ok());
        assert!(mfa_serial("short").is_err());
        assert!(token_code("123456").is_ok());
        for bad in ["12345", "1234567", "12345a", "12 456"] {
            let err = token_code(bad).unwrap_err().to_string();
            assert!(!err.contains(bad), "the code is not echoed: {err}");
        }
    }

    #[test]
    fn arns_and_ids() {
        assert!(role_arn("roleArn", "arn:aws:iam::123456789012:role/Admin").is_ok());
        assert!(role_arn("roleArn", "arn:aws:iam::123456789012:role/path/to/Admin").is_ok());
        assert!(role_arn("roleArn", "arn:aws-us-gov:iam::123456789012:role/A").is_ok());
        for bad in [
            "arn:aws:iam::12345678901:role/A",
            "arn:aws:iam::123456789012:user/A",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:sts::123456789012:role/A",
            "arn:aws:iam:us-east-1:123456789012:role/A",
            "role/A",
        ] {
            let err = role_arn("roleArn", bad).unwrap_err().to_string();
            assert!(err.contains("roleArn"), "{err}");
        }
        assert!(
            saml_provider_arn(
                "principalArn",
                "arn:aws:iam::123456789012:saml-provider/IdP"
            )
            .is_ok()
        );
        assert!(access_key_id("AKIAIOSFODNN7EXAMPLE").is_ok());
        assert!(access_key_id("akiaiosfodnn7example").is_err());
        assert!(external_id("x").is_err());
        assert!(source_identity("ok-id").is_ok());
        assert!(duration_seconds("durationSeconds", 899, 900, 3600).is_err());
        assert!(duration_seconds("durationSeconds", 3600, 900, 3600).is_ok());
    }

    #[test]
    fn tag_limits() {
        assert!(tags([("team", "infra")]).is_ok());
        assert!(tags([("", "v")]).is_err());
        let long = "v".repeat(257);
        assert!(tags([("k", long.as_str())]).is_err());
        let many: Vec<(String, String)> = (0..51).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(tags(many.iter().map(|(k, v)| (k.as_str(), v.as_str()))).is_err());
    }

    #[test]
    fn profile_names() {
        assert!(profile_name("dev-admin").is_ok());
        assert!(profile_name("default").is_ok());
        for bad in [
            "",
            "has space",
            "a[b]",
            "a#b",
            "a=b",
            "profile x",
            "profile",
        ] {
            assert!(profile_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sso_inputs() {
        assert!(start_url("https://d-1234567890.awsapps.com/start").is_ok());
        assert!(start_url("http://127.0.0.1:9000/start").is_ok());
        for bad in [
            "d-123.awsapps.com/start",
            "https://",
            "https://d-123.awsapps.com/st art",
            "ftp://d-123.awsapps.com/start",
        ] {
            let err = start_url(bad).unwrap_err().to_string();
            assert!(err.contains("startUrl"), "{err}");
        }
        assert!(start_url(&format!("https://{}", "x".repeat(1017))).is_err());

        assert!(sso_region("us-east-1").is_ok());
        for bad in ["", "US East", "-us-east-1", "us-east-1-", &"a".repeat(33)] {
            let err = sso_region(bad).unwrap_err().to_string();
            assert!(err.contains("ssoRegion"), "{bad:?}: {err}");
        }

        assert!(sso_session_name("my-sso").is_ok());
        assert!(sso_session_name(&"s".repeat(64)).is_ok());
        for bad in ["", "a b", "a[b]", "a#b", "a;b", "a=b", &"s".repeat(65)] {
            let err = sso_session_name(bad).unwrap_err().to_string();
            assert!(err.contains("ssoSessionName"), "{bad:?}: {err}");
        }

        assert!(sso_role_name("AdministratorAccess").is_ok());
        assert!(sso_role_name("a+=,.@-_1").is_ok());
        for bad in ["", "has space", "a/b", &"r".repeat(65)] {
            let err = sso_role_name(bad).unwrap_err().to_string();
            assert!(err.contains("roleName"), "{bad:?}: {err}");
        }
    }
}
