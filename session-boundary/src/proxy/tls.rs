//! TLS 1.3 to a worker with the session's identity (`boundary.md` §4.2).
//!
//! The session certificate is self-signed with `IsCA=true` and used as an
//! end-entity, which WebPKI verification rejects; and the worker presents
//! that very certificate. So the worker is verified the way the Go client
//! does it, in two parts: its certificate must be byte-identical to the
//! session certificate, and its CertificateVerify signature must check out
//! against it (through the crypto provider). TLS 1.2 is refused.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use session_core::{Error, Result};

use crate::token::AuthorizationData;

/// The text of the error raised when the worker's certificate is not the
/// session's; looked for again when the handshake fails.
pub(crate) const NOT_THE_SESSION_CERTIFICATE: &str =
    "the worker did not present the session certificate";

#[derive(Debug)]
struct WrongCertificate;

impl std::fmt::Display for WrongCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(NOT_THE_SESSION_CERTIFICATE)
    }
}

impl std::error::Error for WrongCertificate {}

/// Accepts exactly one certificate: the session's.
#[derive(Debug)]
struct SessionCertificate {
    certificate: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for SessionCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(WrongCertificate)),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "a Boundary worker speaks TLS 1.3 only".to_owned(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS client configuration of one session: TLS 1.3 only, the session
/// certificate and key as client identity, ALPN `["http/1.1", session_id]`
/// (the worker finds the session there when there is no SNI, as for an IP
/// address), and the worker verified as above.
pub(crate) fn client_config(data: &AuthorizationData) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certificate = CertificateDer::from(data.certificate_der.clone());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(data.key.pkcs8_der().to_vec()));
    let invalid = |e: rustls::Error| {
        Error::invalid_input(
            "authorization token",
            format!("the session certificate or key cannot be used for TLS: {e}"),
        )
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(invalid)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SessionCertificate {
            certificate: certificate.clone(),
            provider,
        }))
        .with_client_auth_cert(vec![certificate], key)
        .map_err(invalid)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec(), data.session_id.as_bytes().to_vec()];
    Ok(Arc::new(config))
}

/// The server name for `host:port`: an IP literal (no SNI is sent, as Go
/// does) or a DNS name.
pub(crate) fn server_name(worker_address: &str) -> Result<ServerName<'static>> {
    let host = if let Some(rest) = worker_address.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        worker_address
            .rsplit_once(':')
            .map_or(worker_address, |(host, _)| host)
    };
    ServerName::try_from(host.to_owned()).map_err(|e| {
        Error::invalid_input(
            "worker address",
            format!("{worker_address:?} has no usable host name: {e}"),
        )
    })
}

/// Whether a failed handshake failed because the worker's certificate was
/// not the session's.
pub(crate) fn is_wrong_certificate(error: &std::io::Error) -> bool {
    let Some(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner)))) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return false;
    };
    inner.downcast_ref::<WrongCertificate>().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("127.0.0.1:9202").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:9202").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("worker.example:9202").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(server_name("bad host:1").is_err());
    }
}
