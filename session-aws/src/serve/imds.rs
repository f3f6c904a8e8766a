//! The IMDSv2 credential paths (AWS reference §3.7), as botocore's
//! `InstanceMetadataFetcher` and the Rust SDK's IMDS provider use them:
//! a token `PUT`, the role listing, the role's credentials; and, when
//! given, the region as the SDKs' IMDS region providers read it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use session_core::{ErrorChain, Secret};
use time::OffsetDateTime;

use super::ecs::credential_response;
use super::{MAX_IMDS_TOKEN_TTL_SECONDS, MAX_IMDS_TOKENS, Shared, aws_timestamp, random_token};

/// Where a client gets a session token.
pub(super) const TOKEN_PATH: &str = "/latest/api/token";

/// The role listing; a role's credentials are under it.
pub(super) const ROLES_PATH: &str = "/latest/meta-data/iam/security-credentials/";

/// The region as plain text (the Rust and Go v2 SDKs' region providers).
pub(super) const REGION_PATH: &str = "/latest/meta-data/placement/region";

/// The instance identity document, whose `region` the Java v2 SDK reads.
pub(super) const IDENTITY_DOCUMENT_PATH: &str = "/latest/dynamic/instance-identity/document";

const TTL_HEADER: HeaderName = HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds");
const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-aws-ec2-metadata-token");
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The IMDS side of a server.
pub(super) struct Imds {
    role_name: String,
    region: Option<String>,
    allow_v1: bool,
    tokens: Mutex<TokenTable>,
}

impl Imds {
    pub(super) fn new(role_name: String, region: Option<String>, allow_v1: bool) -> Self {
        Self {
            role_name,
            region,
            allow_v1,
            tokens: Mutex::new(TokenTable::default()),
        }
    }

    /// Whether the request may read metadata: a known, unexpired token, or
    /// no token at all when IMDSv1 is allowed. A token that is sent must be
    /// valid even then, as on EC2. Refuse with [`unauthorized`] otherwise.
    fn authorizes(&self, headers: &HeaderMap, now: OffsetDateTime) -> bool {
        match headers.get(TOKEN_HEADER) {
            Some(value) => match value.to_str() {
                Ok(token) => self
                    .tokens
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_valid(&Secret::new(token), now),
                Err(_) => false,
            },
            None => self.allow_v1,
        }
    }
}

/// EC2's answer to a missing or bad token, which botocore and the Rust SDK
/// read as "get a new token" (or, without one, as IMDSv1 being off).
fn unauthorized() -> Response {
    text(StatusCode::UNAUTHORIZED, "401 - Unauthorized")
}

/// The tokens handed out and when each expires. A list rather than a map:
/// it is short ([`MAX_IMDS_TOKENS`]), and a scan that compares every entry
/// in constant time does not reveal which bytes of a guess were right.
#[derive(Default)]
pub(super) struct TokenTable {
    tokens: Vec<(Secret, OffsetDateTime)>,
}

impl TokenTable {
    /// Adds `token`, first dropping expired ones and, when full, the one
    /// closest to expiry.
    pub(super) fn insert(&mut self, token: Secret, expires: OffsetDateTime, now: OffsetDateTime) {
        self.tokens.retain(|(_, at)| *at > now);
        if self.tokens.len() >= MAX_IMDS_TOKENS
            && let Some(soonest) = self
                .tokens
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(i, _)| i)
        {
            self.tokens.swap_remove(soonest);
        }
        self.tokens.push((token, expires));
    }

    /// Whether `token` was handed out and has not expired at `now`.
    pub(super) fn is_valid(&self, token: &Secret, now: OffsetDateTime) -> bool {
        // Every entry is compared, found or not.
        self.tokens.iter().fold(false, |found, (known, at)| {
            found | (known == token && *at > now)
        })
    }

    /// How many tokens are kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.tokens.len()
    }
}

/// `PUT /latest/api/token`: a new token valid for the requested TTL.
pub(super) async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(imds) = &shared.imds else {
        return text(StatusCode::NOT_FOUND, "404 - Not Found");
    };
    // EC2 refuses token requests that went through a proxy, so that a
    // forwarding proxy on the host cannot hand tokens to remote callers.
    if headers.contains_key(FORWARDED_FOR) {
        return text(StatusCode::FORBIDDEN, "403 - Forbidden");
    }
    let Some(ttl) = headers
        .get(TTL_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|ttl| (1..=MAX_IMDS_TOKEN_TTL_SECONDS).contains(ttl))
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "400 - Bad Request: X-aws-ec2-metadata-token-ttl-seconds must be a whole number \
             of seconds from 1 to 21600",
        );
    };
    let token = match random_token("IMDS token") {
        Ok(token) => token,
        Err(error) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &ErrorChain(&error).to_string(),
            );
        }
    };
    let now = shared.clock.now();
    imds.tokens
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            token.clone(),
            now + Duration::from_secs(u64::from(ttl)),
            now,
        );
    let mut response = credential_response(text(StatusCode::OK, token.expose()));
    response
        .headers_mut()
        .insert(TTL_HEADER, HeaderValue::from(ttl));
    response
}

/// `GET /latest/meta-data/iam/security-credentials/`: the role name.
pub(super) async fn roles(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(imds) = &shared.imds else {
        return text(StatusCode::NOT_FOUND, "404 - Not Found");
    };
    if !imds.authorizes(&headers, shared.clock.now()) {
        return unauthorized();
    }
    text(StatusCode::OK, &imds.role_name)
}

/// `GET /latest/meta-data/iam/security-credentials/<role>`: the
/// credentials, for the listed role only.
pub(super) async fn role_credentials(
    State(shared): State<Arc<Shared>>,
    Path(role): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(imds) = &shared.imds else {
        return text(StatusCode::NOT_FOUND, "404 - Not Found");
    };
    if !imds.authorizes(&headers, shared.clock.now()) {
        return unauthorized();
    }
    if role != imds.role_name {
        return text(StatusCode::NOT_FOUND, "404 - Not Found");
    }
    match shared.fetch().await {
        Ok(served) => credential_response(Json(serde_json::json!({
            "Code": "Success",
            "LastUpdated": aws_timestamp(served.last_updated),
            "Type": "AWS-HMAC",
            "AccessKeyId": served.creds.access_key_id,
            "SecretAccessKey": served.creds.secret_access_key.expose(),
            "Token": served.token.expose(),
            "Expiration": aws_timestamp(served.expiration),
        }))),
        Err(error) => {
            tracing::debug!(
                category = error.category(),
                "IMDS endpoint: the source failed"
            );
            // EC2's shape for a credential problem (a `Code` other than
            // `Success`, and a `Message`), with a 500 so that clients do
            // not mistake it for credentials: botocore retries, then
            // reports that it found none.
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({
                    "Code": error.category(),
                    "Message": ErrorChain(&error).to_string(),
                    "LastUpdated": aws_timestamp(shared.clock.now()),
                })),
            )
                .into_response()
        }
    }
}

/// `GET /latest/meta-data/placement/region`: the region, if one was given.
pub(super) async fn region(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    with_region(&shared, &headers, |region| text(StatusCode::OK, region))
}

/// `GET /latest/dynamic/instance-identity/document`: only the region. The
/// instance's other fields (its id, account, addresses) describe no
/// instance here, and a made-up value would mislead whoever reads it.
pub(super) async fn identity_document(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    with_region(&shared, &headers, |region| {
        Json(serde_json::json!({ "region": region })).into_response()
    })
}

/// `answer` with the region, for a request with a valid token; else the
/// refusal: 401 for the token, then 404 when no region was given.
fn with_region(
    shared: &Shared,
    headers: &HeaderMap,
    answer: impl FnOnce(&str) -> Response,
) -> Response {
    let Some(imds) = &shared.imds else {
        return text(StatusCode::NOT_FOUND, "404 - Not Found");
    };
    if !imds.authorizes(headers, shared.clock.now()) {
        return unauthorized();
    }
    match imds.region.as_deref() {
        Some(region) => answer(region),
        None => text(StatusCode::NOT_FOUND, "404 - Not Found"),
    }
}

/// Any path no route matched. Under `/latest/` with IMDS on, the token is
/// checked first, as on EC2, so that an unauthenticated caller cannot probe
/// which paths exist.
pub(super) fn not_found(shared: &Shared, path: &str, headers: &HeaderMap) -> Response {
    if let Some(imds) = &shared.imds
        && path.starts_with("/latest/")
    {
        if !imds.authorizes(headers, shared.clock.now()) {
            return unauthorized();
        }
        return text(StatusCode::NOT_FOUND, "404 - Not Found");
    }
    super::ecs::json_error(StatusCode::NOT_FOUND, "NotFound", "no such endpoint")
}

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain")],
        body.to_owned(),
    )
        .into_response()
}
