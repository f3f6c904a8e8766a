//! The shape of a SigV4 `Authorization` header, and the errors AWS answers
//! when it is missing or malformed. The signature itself is **not**
//! verified: any 64-hex-digit value is accepted.

use super::http::ApiError;

/// What the credential scope of a well-formed header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Signer {
    pub(super) access_key_id: String,
    pub(super) region: String,
}

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "ssm";

fn incomplete(message: String) -> ApiError {
    ApiError::new(400, "IncompleteSignatureException", &message)
}

/// Checks the header's shape: `AWS4-HMAC-SHA256 Credential=<key>/<date>/
/// <region>/ssm/aws4_request, SignedHeaders=<h1;h2…>, Signature=<hex>`.
pub(super) fn check(header: Option<&str>) -> Result<Signer, ApiError> {
    let Some(header) = header.filter(|h| !h.trim().is_empty()) else {
        return Err(ApiError::new(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let Some(params) = header
        .strip_prefix(ALGORITHM)
        .filter(|rest| rest.starts_with(' '))
    else {
        return Err(incomplete(format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
             Authorization={header}"
        )));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in params.split(',') {
        let (name, value) = part.trim().split_once('=').unwrap_or((part.trim(), ""));
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    for (name, value) in [
        ("Credential", credential),
        ("SignedHeaders", signed_headers),
        ("Signature", signature),
    ] {
        if value.is_none_or(str::is_empty) {
            return Err(incomplete(format!(
                "Authorization header requires '{name}' parameter. Authorization={header}"
            )));
        }
    }
    let signed_headers = signed_headers.unwrap_or_default();
    if !signed_headers
        .split(';')
        .all(|h| !h.is_empty() && h == h.to_ascii_lowercase())
    {
        return Err(incomplete(format!(
            "Invalid SignedHeaders '{signed_headers}'. Authorization={header}"
        )));
    }
    let signature = signature.unwrap_or_default();
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(incomplete(format!(
            "Invalid Signature '{signature}'. Authorization={header}"
        )));
    }
    let credential = credential.unwrap_or_default();
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = scope[..] else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got '{credential}'"
        )));
    };
    let date_ok = date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit());
    if key.is_empty() || region.is_empty() || !date_ok || terminator != "aws4_request" {
        return Err(incomplete(format!(
            "Invalid credential scope '{credential}'. Authorization={header}"
        )));
    }
    if service != SERVICE {
        return Err(ApiError::new(
            400,
            "InvalidSignatureException",
            &format!("Credential should be scoped to correct service: '{SERVICE}'. "),
        ));
    }
    Ok(Signer {
        access_key_id: key.to_owned(),
        region: region.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn header(credential: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=content-type;host;x-amz-date, Signature={SIG}"
        )
    }

    fn code(header: Option<&str>) -> (u16, String) {
        let e = check(header).unwrap_err();
        (e.status, e.error_type)
    }

    #[test]
    fn a_well_formed_header_gives_key_and_region() {
        let signer = check(Some(&header(
            "AKIDEXAMPLE/20240829/eu-west-1/ssm/aws4_request",
        )));
        assert_eq!(
            signer.unwrap(),
            Signer {
                access_key_id: "AKIDEXAMPLE".into(),
                region: "eu-west-1".into()
            }
        );
    }

    #[test]
    fn missing_and_malformed_headers_get_the_aws_errors() {
        let missing = (403, "MissingAuthenticationTokenException".to_owned());
        assert_eq!(code(None), missing);
        assert_eq!(code(Some("  ")), missing);
        let incomplete = (400, "IncompleteSignatureException".to_owned());
        assert_eq!(code(Some("Bearer abc")), incomplete);
        assert_eq!(code(Some("AWS4-HMAC-SHA256")), incomplete);
        assert_eq!(
            code(Some(&header("AKID/20240829/us-east-1/ssm"))),
            incomplete
        );
        assert_eq!(
            code(Some(&header("AKID/2024-08-29/us-east-1/ssm/aws4_request"))),
            incomplete
        );
        let no_sig = "AWS4-HMAC-SHA256 Credential=AKID/20240829/us-east-1/ssm/aws4_request, SignedHeaders=host";
        assert_eq!(code(Some(no_sig)), incomplete);
        let short_sig = format!("{no_sig}, Signature=abc");
        assert_eq!(code(Some(&short_sig)), incomplete);
        assert_eq!(
            code(Some(&header("AKID/20240829/us-east-1/ec2/aws4_request"))),
            (400, "InvalidSignatureException".to_owned())
        );
    }
}
