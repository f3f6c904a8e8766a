//! The files a sushy-emulator starts with, written into its temp dir: the
//! htpasswd file and certificates ([`SETUP_SCRIPT`]), the config file
//! (Python source), and the watchdog that runs the emulator
//! ([`WATCHDOG_SCRIPT`]).

use std::path::Path;
use std::process::{Command, Stdio};

use super::super::Redacted;
use super::super::process::{LOG_TAIL_LINES, StartError, tail};
use super::{Peer, SushyBuilder};

/// The environment variable that hands the password to [`SETUP_SCRIPT`] (not
/// its command line, which `ps` shows).
const PASSWORD_ENV: &str = "SESSION_TESTKIT_SUSHY_PASSWORD";

/// Writes the htpasswd file and, for HTTPS, a CA and a server certificate into
/// `argv[1]`; prints the password as JSON. Needs `bcrypt` (a dependency of
/// sushy-tools) and `cryptography`.
const SETUP_SCRIPT: &str = r#"
import datetime, ipaddress, json, os, secrets, sys

import bcrypt

out, username, scheme = sys.argv[1], sys.argv[2], sys.argv[3]
password = os.environ.get("SESSION_TESTKIT_SUSHY_PASSWORD") or secrets.token_urlsafe(18)
digest = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=4)).decode("ascii")
with open(os.path.join(out, "htpasswd"), "w", encoding="utf-8") as f:
    f.write(f"{username}:{digest}\n")

if scheme == "https":
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=7)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def usage(**on):
        flags = ("digital_signature", "content_commitment", "key_encipherment",
                 "data_encipherment", "key_agreement", "key_cert_sign",
                 "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{f: on.get(f, False) for f in flags})

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("session-testkit sushy-emulator CA")
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(name("127.0.0.1")).issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("localhost"),
            ]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))

    pem = serialization.Encoding.PEM
    with open(os.path.join(out, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(os.path.join(out, "cert.pem"), "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(os.path.join(out, "key.pem"), "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))

print(json.dumps({"password": password}))
"#;

/// Runs the `sushy-emulator` script given as `argv[2]` (with the rest of the
/// arguments) in this interpreter; as soon as stdin reaches EOF, removes the
/// folder `argv[1]` (the emulator's temp dir) and exits. Only the test process
/// holds the write end of that pipe, so the emulator ends with it, and leaves
/// no files behind, even when its [`SushyEmulator`](super::SushyEmulator) is never dropped (a
/// `static`) or the test process is killed.
pub(super) const WATCHDOG_SCRIPT: &str = r#"
import os, runpy, shutil, sys, threading

def exit_at_eof(folder):
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os._exit(0)

threading.Thread(target=exit_at_eof, args=(sys.argv[1],), daemon=True).start()
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"#;

impl SushyBuilder {
    /// Runs [`SETUP_SCRIPT`]; returns the password.
    pub(super) fn write_credentials(&self, peer: &Peer, dir: &Path) -> Result<String, StartError> {
        let mut cmd = Command::new(&peer.python);
        cmd.arg("-c")
            .arg(SETUP_SCRIPT)
            .arg(dir)
            .arg(&self.username)
            .arg(if self.https { "https" } else { "http" })
            .stdin(Stdio::null())
            .env("PYTHONDONTWRITEBYTECODE", "1");
        match &self.password {
            Some(Redacted(password)) => cmd.env(PASSWORD_ENV, password),
            None => cmd.env_remove(PASSWORD_ENV),
        };
        let output = cmd.output().map_err(|e| {
            StartError::failed(format!("cannot run {}: {e}", peer.python.display()))
        })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(StartError::Failed {
                reason: format!(
                    "generating the htpasswd file and certificates failed ({}; needs the \
                     Python packages bcrypt and cryptography)",
                    output.status
                ),
                tail: tail(&stderr, LOG_TAIL_LINES),
            });
        }
        #[derive(serde::Deserialize)]
        struct Generated {
            password: String,
        }
        serde_json::from_slice::<Generated>(&output.stdout)
            .map(|g| g.password)
            .map_err(|e| StartError::Failed {
                reason: format!("the setup script printed no password: {e}"),
                tail: tail(&stderr, LOG_TAIL_LINES),
            })
    }

    /// The emulator's config file (Python source).
    pub(super) fn config_file(&self, dir: &Path, port: u16) -> Result<String, StartError> {
        let path = |name: &str| {
            let path = dir.join(name);
            path.to_str()
                .map(py_str)
                .ok_or_else(|| StartError::failed(format!("{} is not UTF-8", path.display())))
        };
        let mut text = format!(
            "# Written by session_testkit::peers::sushy.\n\
             SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n\
             SUSHY_EMULATOR_LISTEN_PORT = {port}\n\
             SUSHY_EMULATOR_FAKE_DRIVER = True\n\
             SUSHY_EMULATOR_STATE_DIR = {}\n\
             SUSHY_EMULATOR_AUTH_FILE = {}\n",
            path("state")?,
            path("htpasswd")?,
        );
        if self.https {
            text.push_str(&format!(
                "SUSHY_EMULATOR_SSL_CERT = {}\nSUSHY_EMULATOR_SSL_KEY = {}\n",
                path("cert.pem")?,
                path("key.pem")?,
            ));
        }
        for (key, value) in &self.config {
            text.push_str(&format!("{key} = {value}\n"));
        }
        Ok(text)
    }
}

/// A Python string literal for `s` (a JSON string is one).
fn py_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

pub(super) fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_is_python() {
        let builder = SushyBuilder::default().config("SUSHY_EMULATOR_FEATURE_SET", "'minimum'");
        let dir = Path::new("/tmp/it's \"here\"");
        let text = builder.config_file(dir, 8123).unwrap_or_else(|_| panic!());
        assert!(
            text.contains("SUSHY_EMULATOR_LISTEN_PORT = 8123\n"),
            "{text}"
        );
        assert!(
            text.contains("SUSHY_EMULATOR_FAKE_DRIVER = True\n"),
            "{text}"
        );
        assert!(
            text.contains(r#"SUSHY_EMULATOR_AUTH_FILE = "/tmp/it's \"here\"/htpasswd""#),
            "{text}"
        );
        assert!(
            text.contains(r#"SUSHY_EMULATOR_SSL_KEY = "/tmp/it's \"here\"/key.pem""#),
            "{text}"
        );
        assert!(
            text.ends_with("SUSHY_EMULATOR_FEATURE_SET = 'minimum'\n"),
            "{text}"
        );
        let http = SushyBuilder::default().https(false);
        let text = http.config_file(dir, 8123).unwrap_or_else(|_| panic!());
        assert!(!text.contains("SSL"), "{text}");
    }

    #[test]
    fn identifiers() {
        for yes in ["A", "_x", "SUSHY_EMULATOR_FAKE_SYSTEMS", "a1"] {
            assert!(is_identifier(yes), "{yes}");
        }
        for no in ["", "1a", "a-b", "a b", "a\n"] {
            assert!(!is_identifier(no), "{no:?}");
        }
    }
}
