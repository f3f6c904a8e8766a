//! The stored form of [`RedfishConfig`]: the same keys, plus the old
//! `caCertificatePem` (read, folded into `caFile` or `caPem`, and written
//! as `null` so that a merge into the session config removes it).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::RedfishConfig;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StoredConfig {
    endpoint: String,
    username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_pem: Option<String>,
    /// PEM text or a path, before the two had keys of their own.
    #[serde(default)]
    ca_certificate_pem: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    insecure_skip_verify: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    allow_insecure_http: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    basic_auth_fallback: Option<bool>,
}

impl From<StoredConfig> for RedfishConfig {
    fn from(s: StoredConfig) -> Self {
        let (mut ca_file, mut ca_pem) = (s.ca_file, s.ca_pem);
        if let Some(old) = s.ca_certificate_pem
            && ca_file.is_none()
            && ca_pem.is_none()
        {
            if old.contains("-----BEGIN") {
                ca_pem = Some(old);
            } else {
                ca_file = Some(PathBuf::from(old));
            }
        }
        RedfishConfig {
            endpoint: s.endpoint,
            username: s.username,
            ca_file,
            ca_pem,
            insecure_skip_verify: s.insecure_skip_verify,
            allow_insecure_http: s.allow_insecure_http,
            basic_auth_fallback: s.basic_auth_fallback,
        }
    }
}

impl From<RedfishConfig> for StoredConfig {
    fn from(c: RedfishConfig) -> Self {
        StoredConfig {
            endpoint: c.endpoint,
            username: c.username,
            ca_file: c.ca_file,
            ca_pem: c.ca_pem,
            ca_certificate_pem: None,
            insecure_skip_verify: c.insecure_skip_verify,
            allow_insecure_http: c.allow_insecure_http,
            basic_auth_fallback: c.basic_auth_fallback,
        }
    }
}
