//! Session certificates as a Boundary controller issues them
//! (`boundary.md` §3, "Session certificate").

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// A session's certificate and Ed25519 key.
#[derive(Clone)]
pub struct SessionIdentity {
    /// The self-signed session certificate, DER.
    pub certificate_der: Vec<u8>,
    /// The private key as PKCS#8 DER (what rustls takes).
    pub private_key_pkcs8: Vec<u8>,
    /// The key as Go's `ed25519.PrivateKey`: 32-byte seed ‖ 32-byte public
    /// key (what the authorization token carries, field 130).
    pub seed_and_public: [u8; 64],
}

impl std::fmt::Debug for SessionIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionIdentity").finish_non_exhaustive()
    }
}

/// Issues a session certificate: self-signed Ed25519, CA, DNS `SAN[0]` = the
/// session id, one SAN per worker address (IP SAN for an IP literal, DNS
/// otherwise), both EKUs, valid from a minute before `now` (the fake's
/// clock) to `not_after`.
pub fn issue(
    session_id: &str,
    worker_addresses: &[String],
    now: OffsetDateTime,
    not_after: OffsetDateTime,
) -> SessionIdentity {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("generate an Ed25519 key");
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, session_id);
    let mut sans = vec![SanType::DnsName(
        session_id.try_into().expect("a session id is a DNS name"),
    )];
    for address in worker_addresses {
        let host = host_part(address);
        match host.parse::<IpAddr>() {
            Ok(ip) => sans.push(SanType::IpAddress(ip)),
            Err(_) => sans.push(SanType::DnsName(
                host.try_into().expect("a worker host name is a DNS name"),
            )),
        }
    }
    params.subject_alt_names = sans;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = now - Duration::minutes(1);
    params.not_after = not_after;
    let cert = params
        .self_signed(&key)
        .expect("self-sign the session certificate");
    let certificate_der = cert.der().to_vec();
    let private_key_pkcs8 = key.serialize_der();
    // PKCS#8 of Ed25519 (v1 or v2): the 32-byte seed sits at bytes 16..48.
    let mut seed_and_public = [0u8; 64];
    seed_and_public[..32].copy_from_slice(&private_key_pkcs8[16..48]);
    seed_and_public[32..].copy_from_slice(key.public_key_raw());
    SessionIdentity {
        certificate_der,
        private_key_pkcs8,
        seed_and_public,
    }
}

/// `host` of `host:port`, `[v6]:port` or a bare host.
fn host_part(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_in_the_token_shape_matches_the_certificate() {
        let id = issue(
            "s_1234567890",
            &["127.0.0.1:9202".to_owned()],
            time::macros::datetime!(2026-12-06 00:00 UTC),
            time::macros::datetime!(2026-12-06 08:00 UTC),
        );
        let key = KeyPair::try_from(id.private_key_pkcs8.as_slice()).expect("parse PKCS#8");
        assert_eq!(&id.seed_and_public[32..], key.public_key_raw());
        assert!(id.certificate_der.len() > 100);
        assert_eq!(host_part("127.0.0.1:9202"), "127.0.0.1");
        assert_eq!(host_part("[::1]:9202"), "::1");
        assert_eq!(host_part("worker.example"), "worker.example");
    }
}
