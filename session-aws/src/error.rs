//! Maps AWS SDK errors onto the categories of [`session_core::Error`], in
//! one place.

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use session_core::Error;

/// Maps an SDK error of a call made for `target` (e.g. `session 'x' (…)`).
///
/// The service's message is kept (STS messages hold no secrets); the request
/// itself, which carries signatures and tokens, is never printed.
pub(crate) fn from_sdk<E, R>(call: &str, target: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    from_sdk_of("aws-sts", call, target, err)
}

/// [`from_sdk`] for the SDK client of `service` (`aws-sts`, `aws-ssm`),
/// which names the provider in errors the categories do not cover.
pub(crate) fn from_sdk_of<E, R>(
    service: &str,
    call: &str,
    target: &str,
    err: SdkError<E, R>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let target = target.to_owned();
    match &err {
        SdkError::TimeoutError(_) => Error::Timeout {
            target,
            after: std::time::Duration::ZERO,
        },
        SdkError::DispatchFailure(failure) => Error::Unavailable {
            target,
            message: format!(
                "{call}: cannot reach the endpoint{}",
                if failure.is_timeout() {
                    " (timed out)"
                } else {
                    ""
                }
            ),
            source: None,
        },
        SdkError::ServiceError(failed) => {
            let inner = failed.err();
            let code = inner.code().unwrap_or("Unknown").to_owned();
            let message = format!(
                "{call}: {code}: {}",
                inner.message().unwrap_or("no message")
            );
            from_code(service, &code, target, message)
        }
        SdkError::ResponseError(_) => Error::Provider {
            provider: service.into(),
            target,
            message: format!("{call}: the response could not be read"),
            retryable: true,
            source: None,
        },
        _ => Error::Provider {
            provider: service.into(),
            target,
            message: format!("{call}: {}", aws_sdk_sts::error::DisplayErrorContext(&err)),
            retryable: false,
            source: None,
        },
    }
}

/// The category of an AWS error code.
fn from_code(service: &str, code: &str, target: String, message: String) -> Error {
    match code {
        "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "UnrecognizedClientException"
        | "IDPRejectedClaim"
        | "InvalidIdentityToken"
        | "UnauthorizedException"
        | "MissingAuthenticationToken" => Error::Unauthenticated { target, message },
        "AccessDenied" | "AccessDeniedException" | "RegionDisabledException" => {
            Error::PermissionDenied { target, message }
        }
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => Error::Throttled {
            target,
            retry_after: None,
        },
        // SSM: a target whose agent is not connected may come back.
        "ServiceUnavailable"
        | "InternalFailure"
        | "InternalError"
        | "InternalServerError"
        | "IDPCommunicationError"
        | "TargetNotConnected" => Error::Unavailable {
            target,
            message,
            source: None,
        },
        "DoesNotExistException" => Error::NotFound {
            what: format!("{target}: {message}"),
        },
        "ValidationError"
        | "ValidationException"
        | "InvalidDocument"
        | "InvalidFilterKey"
        | "InvalidNextToken"
        | "MalformedPolicyDocument"
        | "PackedPolicyTooLarge"
        | "InvalidAuthorizationMessageException" => Error::InvalidInput {
            field: "request".into(),
            reason: format!("{target}: {message}"),
        },
        _ => Error::Provider {
            provider: service.into(),
            target,
            message,
            retryable: false,
            source: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_categories() {
        let t = || "session 'x'".to_owned();
        let m = || "m".to_owned();
        assert_eq!(
            from_code("aws-sts", "ExpiredToken", t(), m()).category(),
            "unauthenticated"
        );
        assert_eq!(
            from_code("aws-sts", "AccessDenied", t(), m()).category(),
            "permission_denied"
        );
        assert!(from_code("aws-sts", "Throttling", t(), m()).is_retryable());
        assert!(from_code("aws-sts", "ServiceUnavailable", t(), m()).is_retryable());
        assert_eq!(
            from_code("aws-sts", "ValidationError", t(), m()).category(),
            "invalid_input"
        );
        let other = from_code("aws-sts", "SomethingNew", t(), m());
        assert_eq!(other.category(), "provider");
        assert!(!other.is_retryable());
    }
}
