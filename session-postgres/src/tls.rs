//! TLS to the server, chosen as libpq chooses it: by the `sslmode`,
//! `sslrootcert`, `sslcert` and `sslkey` parameters of the database URL (or
//! key-value string), so the URL a team already gives `psql` works here.
//!
//! tokio-postgres knows only `sslmode=disable|prefer|require` and leaves
//! certificate checks to the TLS connector, so these parameters are taken
//! out of the URL here, and the connector (rustls, through
//! tokio-postgres-rustls) checks what libpq would:
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | no | — |
//! | `allow`, `prefer` (the default) | if the server offers it | no (chain only if a root certificate is given) |
//! | `require` | yes | no (chain only if a root certificate is given) |
//! | `verify-ca` | yes | chain up to the root certificate |
//! | `verify-full` | yes | chain, and the host name in the URL |
//!
//! The root certificate is `sslrootcert` (a PEM file, or `system` for the
//! system's trusted roots, which needs `verify-full`, as in libpq), else
//! `~/.postgresql/root.crt` if it exists. `sslcert` and `sslkey` give a
//! client certificate (PEM). `allow` is taken as `prefer`: TLS when the
//! server offers it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The parameters taken out of the URL.
const TLS_KEYS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// What `sslmode` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Where the root certificates come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Roots {
    File(PathBuf),
    System,
}

/// The TLS parameters of one URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) mode: Mode,
    roots: Option<Roots>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
}

impl Settings {
    /// Takes the TLS parameters out of `url`: the settings, and the URL
    /// without them for tokio-postgres. The error names what is wrong.
    pub(crate) fn split(url: &str) -> Result<(Self, String), String> {
        let (pairs, rest) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            split_url(url)?
        } else {
            split_key_values(url)?
        };
        let mut mode = None;
        let mut roots = None;
        let (mut client_cert, mut client_key) = (None, None);
        for (key, value) in pairs {
            match key.as_str() {
                "sslmode" => {
                    mode = Some(match value.as_str() {
                        "disable" => Mode::Disable,
                        "allow" | "prefer" => Mode::Prefer,
                        "require" => Mode::Require,
                        "verify-ca" => Mode::VerifyCa,
                        "verify-full" => Mode::VerifyFull,
                        other => {
                            return Err(format!(
                                "sslmode {other:?} is not one of disable, allow, prefer, require, \
                                 verify-ca, verify-full"
                            ));
                        }
                    })
                }
                "sslrootcert" if value == "system" => roots = Some(Roots::System),
                "sslrootcert" => roots = Some(Roots::File(value.into())),
                "sslcert" => client_cert = Some(PathBuf::from(value)),
                _ => client_key = Some(PathBuf::from(value)),
            }
        }
        if client_cert.is_some() != client_key.is_some() {
            return Err("sslcert and sslkey go together (a client certificate and its key)".into());
        }
        let mode = match (mode, &roots) {
            // As libpq: the system's roots are for verifying the host name.
            (None, Some(Roots::System)) => Mode::VerifyFull,
            (Some(mode), Some(Roots::System)) if mode != Mode::VerifyFull => {
                return Err(
                    "sslrootcert=system needs sslmode=verify-full (a weaker mode would trust any \
                     host that has a public certificate)"
                        .into(),
                );
            }
            (mode, _) => mode.unwrap_or(Mode::Prefer),
        };
        Ok((
            Settings {
                mode,
                roots,
                client_cert,
                client_key,
            },
            rest,
        ))
    }

    /// The mode tokio-postgres negotiates with.
    pub(crate) fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }

    /// The connector, its files read now (`home`: where
    /// `.postgresql/root.crt` is looked for). The error names the file.
    pub(crate) fn connector(&self, home: Option<&Path>) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        if self.mode == Mode::Disable {
            // Never used: as libpq, read none of the files a URL shared
            // with TLS connections may name.
            let config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS set-up: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                    provider.signature_verification_algorithms,
                )))
                .with_no_client_auth();
            return Ok(MakeRustlsConnect::new(config));
        }
        let default_root = home.map(|home| home.join(".postgresql").join("root.crt"));
        let roots = match &self.roots {
            Some(roots) => Some(roots.clone()),
            None => default_root
                .as_ref()
                .filter(|path| path.is_file())
                .map(|path| Roots::File(path.clone())),
        };
        let verifier: Arc<dyn ServerCertVerifier> = match (self.mode, roots) {
            (Mode::VerifyCa | Mode::VerifyFull, None) => {
                return Err(format!(
                    "sslmode={} needs the root certificate the server's is checked against: give \
                     sslrootcert=/path/to/ca.pem (or sslrootcert=system for the system's trusted \
                     roots), or put it in {}",
                    if self.mode == Mode::VerifyCa {
                        "verify-ca"
                    } else {
                        "verify-full"
                    },
                    default_root.map_or_else(
                        || "~/.postgresql/root.crt".into(),
                        |p| p.display().to_string()
                    ),
                ));
            }
            (_, None) => Arc::new(AnyCertificate(provider.signature_verification_algorithms)),
            (mode, Some(roots)) => {
                let store = root_store(&roots)?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                        .build()
                        .map_err(|e| format!("the root certificates cannot be used: {e}"))?;
                if mode == Mode::VerifyFull {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("sslcert {}: {e}", cert.display()))?;
                if chain.is_empty() {
                    return Err(format!("sslcert {}: no certificate in it", cert.display()));
                }
                let key_der = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("sslkey {}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| format!("sslcert and sslkey: {e}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }
}

/// The roots of `roots`. The error names the file.
fn root_store(roots: &Roots) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "sslrootcert {}: no usable certificate in it",
                    path.display()
                ));
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err("sslrootcert=system: the system has no trusted roots".into());
            }
        }
    }
    Ok(store)
}

/// `verify-ca`: the chain up to a root, whatever host name it names.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            // The name is checked last, once the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a root certificate: encrypted, with any
/// certificate (libpq's behaviour; the handshake's signatures are still
/// checked against the certificate the server sent).
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A `postgres://` URL's TLS parameters (decoded), and the URL without
/// them.
fn split_url(url: &str) -> Result<(Vec<(String, String)>, String), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((Vec::new(), url.to_owned()));
    };
    let mut taken = Vec::new();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key)?;
        if TLS_KEYS.contains(&key.as_str()) {
            taken.push((key, decode(value)?));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((taken, rest))
}

fn decode(text: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("{text:?} is not UTF-8 once percent-decoded"))
}

/// A key-value string's TLS parameters, and the string without them
/// (`key=value` pairs separated by spaces; a value may be in single quotes,
/// with `\` escaping the next character, as libpq reads them).
fn split_key_values(text: &str) -> Result<(Vec<(String, String)>, String), String> {
    let mut taken = Vec::new();
    let mut kept = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("{key:?} has no value (expected key=value)"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return Err(format!("the value of {key:?} has no closing quote")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        if TLS_KEYS.contains(&key.as_str()) {
            taken.push((key, value));
        } else {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{quoted}'"));
        }
    }
    Ok((taken, kept.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (Settings, String) {
        Settings::split(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn tls_parameters_leave_the_url_and_the_rest_stays() {
        let (tls, rest) = split(
            "postgres://u@db.example:5433/ws?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20b.pem&connect_timeout=3",
        );
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.roots, Some(Roots::File("/etc/ca b.pem".into())));
        assert_eq!(
            rest,
            "postgres://u@db.example:5433/ws?application_name=x&connect_timeout=3"
        );
        let (tls, rest) = split("postgresql://u@h/db");
        assert_eq!(
            (tls.mode, rest.as_str()),
            (Mode::Prefer, "postgresql://u@h/db")
        );
        let (tls, rest) = split("postgres://u@h/db?sslmode=disable");
        assert_eq!(
            (tls.mode, rest.as_str()),
            (Mode::Disable, "postgres://u@h/db")
        );

        let (tls, rest) = split(
            "host=h port=5433 sslmode = verify-ca sslrootcert='/tmp/my ca\\'s.pem' application_name='a b'",
        );
        assert_eq!(tls.mode, Mode::VerifyCa);
        assert_eq!(tls.roots, Some(Roots::File("/tmp/my ca's.pem".into())));
        assert_eq!(rest, "host='h' port='5433' application_name='a b'");
        // What is left still reads as tokio-postgres reads it.
        let config: tokio_postgres::Config = rest.parse().expect("tokio-postgres reads the rest");
        assert_eq!(config.get_application_name(), Some("a b"));
    }

    #[test]
    fn libpq_rules_and_clear_errors() {
        assert_eq!(split("sslmode=allow host=h").0.mode, Mode::Prefer);
        assert_eq!(split("sslrootcert=system host=h").0.mode, Mode::VerifyFull);
        let errors = [
            ("host=h sslmode=always", "sslmode \"always\""),
            (
                "host=h sslmode=require sslrootcert=system",
                "needs sslmode=verify-full",
            ),
            ("host=h sslcert=/c.pem", "sslcert and sslkey go together"),
            ("host=h sslrootcert='/x", "no closing quote"),
            ("host=h sslmode", "has no value"),
        ];
        for (url, expected) in errors {
            let error = Settings::split(url).expect_err(url);
            assert!(error.contains(expected), "{url}: {error}");
        }
        let (verify, _) = split("host=h sslmode=verify-full");
        let no_home = verify.connector(Some(Path::new("/nonexistent"))).err();
        let message = no_home.expect("no root certificate");
        assert!(
            message.contains("sslrootcert=")
                && message.contains("/nonexistent/.postgresql/root.crt"),
            "{message}"
        );
        let (disabled, _) = split(
            "host=h sslmode=disable sslrootcert=/nonexistent/ca.pem \
             sslcert=/nonexistent/c.pem sslkey=/nonexistent/k.pem",
        );
        assert!(
            disabled.connector(None).is_ok(),
            "no file is read without TLS"
        );
        let (missing, _) = split("host=h sslmode=verify-ca sslrootcert=/nonexistent/ca.pem");
        let message = missing.connector(None).err().expect("missing file");
        assert!(
            message.contains("sslrootcert /nonexistent/ca.pem"),
            "{message}"
        );
        // Without a root certificate, prefer and require check nothing.
        assert!(split("host=h sslmode=require").0.connector(None).is_ok());
    }
}
