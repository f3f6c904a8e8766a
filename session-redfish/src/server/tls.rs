//! TLS: a self-signed CA and leaf from `rcgen`, or PEM files, and the
//! rustls server config (the handshake runs in `connections`).

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use session_core::Error;

/// The certificate chain and key the server presents, plus the CA to trust.
#[derive(Clone)]
pub(crate) struct TlsMaterial {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: session_core::Secret,
    pub(crate) ca_pem: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("key_pem", &self.key_pem)
            .finish_non_exhaustive()
    }
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid_input("tls", format!("{what}: {e}"))
}

/// A fresh CA and a leaf for `localhost`, `127.0.0.1` and `::1` signed by it.
pub(crate) fn self_signed() -> Result<TlsMaterial, Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_error("CA", e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "session-redfish local CA");
    let ca_key = KeyPair::generate().map_err(|e| tls_error("CA key", e))?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(|e| tls_error("CA", e))?;

    let mut leaf_params = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(|e| tls_error("leaf", e))?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(|e| tls_error("leaf key", e))?;
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .map_err(|e| tls_error("leaf", e))?;
    Ok(TlsMaterial {
        cert_pem: leaf.pem(),
        key_pem: session_core::Secret::new(leaf_key.serialize_pem()),
        ca_pem: ca.pem(),
    })
}

/// A rustls server config (ring provider, TLS 1.2 and 1.3, HTTP/1.1).
pub(crate) fn server_config(material: &TlsMaterial) -> Result<Arc<rustls::ServerConfig>, Error> {
    let certs = CertificateDer::pem_slice_iter(material.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error("certificate PEM", e))?;
    if certs.is_empty() {
        return Err(tls_error("certificate PEM", "no CERTIFICATE block"));
    }
    let key = PrivateKeyDer::from_pem_slice(material.key_pem.expose().as_bytes())
        .map_err(|e| tls_error("private key PEM", e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_error("protocol versions", e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| tls_error("certificate/key", e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
