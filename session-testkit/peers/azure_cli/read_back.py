#!/usr/bin/env python3
"""Read an Azure CLI config directory back with the Azure CLI's own code.

What this proves
----------------
Given a directory that our "Azure CLI sink" wrote (``azureProfile.json`` and
``msal_token_cache.json``), this script runs the real ``azure-cli-core``
(``azure.cli.core._profile.Profile``), which in turn runs the real MSAL Python
(``msal.PublicClientApplication`` with ``msal_extensions.PersistedTokenCache``),
exactly as ``az account list`` and ``az account get-access-token`` do:

* ``Profile.load_cached_subscriptions()`` -> the subscriptions az sees
  (``az account list``; only those whose ``environmentName`` is the active
  cloud, ``AzureCloud`` unless ``--cloud`` says otherwise);
* ``Profile.get_subscription()`` -> the default one (``isDefault: true``);
* ``Profile.get_raw_token(scopes=[SCOPE], subscription=...)`` -> the access
  token (``az account get-access-token --scope SCOPE``). az looks the user up
  with ``PublicClientApplication.get_accounts(username)`` (MSAL ``Account``
  entity, case-insensitive username match) and then
  ``acquire_token_silent_with_error`` (MSAL ``AccessToken`` entity).

The token must come from the cache file: every HTTP request az/MSAL make is
recorded and printed, so a caller can assert there was no ``POST .../token``
(the stub answers such a POST with ``invalid_grant``, so a cache miss is an
error, not a network token). The token itself is never printed, only its
SHA-256.

Why each stub is needed
-----------------------
* A local HTTPS "authority" on 127.0.0.1 (self-signed certificate made here
  with ``cryptography``, trusted through ``REQUESTS_CA_BUNDLE``): MSAL validates
  the authority when ``PublicClientApplication`` is constructed, by fetching
  ``https://<host>/<tenant>/v2.0/.well-known/openid-configuration`` (tenant
  discovery). MSAL accepts https authorities only. The answer also sets the
  token cache ``realm`` MSAL looks for: the first path segment of its
  ``token_endpoint``, i.e. the tenant.
* ``clouds.config`` with ``[AzureCloud] endpoint_active_directory =
  https://127.0.0.1:PORT`` (az overlays this file on its built-in clouds, so
  the built-in cloud name, and the ``environmentName`` in azureProfile.json,
  stay ``AzureCloud``): points az's authority at the stub.
* ``AZURE_CORE_INSTANCE_DISCOVERY=false`` (az's own ``core.instance_discovery``
  setting, passed to MSAL as ``instance_discovery=False``): otherwise MSAL
  first asks login.microsoftonline.com whether 127.0.0.1 is a known instance.
* ``versionCheck.json`` saying "checked just now": otherwise az's constructor
  asks azcliprod.blob.core.windows.net for its latest version.
* A socket guard refuses (and reports in ``blocked_connections``) any name
  look-up or connection that is not to loopback, so the run is provably
  offline (without ``AZURE_CORE_INSTANCE_DISCOVERY=false`` it reports
  ``login.microsoftonline.com:443``).

MSAL keys the cache ``environment`` by the authority's host name WITHOUT the
port (``urlparse(...).hostname``), so the sink's files must say
``127.0.0.1`` whatever port the stub listens on: the port can be chosen here
(default: a free one) and the caller never needs to know it.

The files are read from a private copy of ``--config-dir`` (az writes
``clouds.config``, ``config``, ``az.json``, ``msal_http_cache.bin``... next to
them, and rewrites a file it cannot parse); the caller's directory is left
untouched.

Usage
-----
    read_back.py --config-dir DIR [--tenant T] [--scope SCOPE]
                 [--subscription ID] [--authority-port PORT] [--cloud NAME]

``--tenant`` defaults to the chosen subscription's ``tenantId`` (that is what
az uses); when given, it is passed as ``get_raw_token(tenant=...)`` instead of
the subscription (``az account get-access-token --tenant T``). ``--scope``
defaults to az's own default, the cloud's ARM scope
(``https://management.core.windows.net//.default`` for AzureCloud).

Prints one JSON object on stdout:
    {"subscriptions": [{"id", "name", "user", "isDefault", "tenantId"}...],
     "default_subscription": id or null,
     "token_sha256": hex or null, "token_expires_on": int or null,
     "token_source": "cache" / "identity_provider" / ... or null,
     "requests": ["GET /path", ...], "blocked_connections": [...],
     "key_mismatches": [...], "error": null or "message"}
``token_expires_on`` is az's value (now + MSAL's int expires_in), which can be
up to a second below the cache entry's ``expires_on``. ``key_mismatches``
lists cache entries whose key differs from the one MSAL itself would build
(MSAL still finds them by a field search; informational).
Exits 0 whenever it could run az (a missing token is reported in "error"),
2 on usage errors, 1 on crashes.
"""

import argparse
import datetime
import hashlib
import ipaddress
import json
import os
import shutil
import socket
import ssl
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

AZ_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


# --------------------------------------------------------------------------
# Offline guard: only loopback connections are allowed (and refused ones are
# reported).
# --------------------------------------------------------------------------
BLOCKED = []
_real_connect = socket.socket.connect


def _is_loopback(address):
    host = address[0] if isinstance(address, tuple) else address
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        BLOCKED.append(str(address[0]) + ":" + str(address[1]))
        raise ConnectionRefusedError("read_back.py: non-loopback connection refused")
    return _real_connect(self, address)


_real_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host, port, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and not _is_loopback((name,)):
        BLOCKED.append("%s:%s" % (name, port))
        raise socket.gaierror(socket.EAI_NONAME, "read_back.py: non-loopback name refused")
    return _real_getaddrinfo(host, port, *args, **kwargs)


socket.socket.connect = _guarded_connect
socket.getaddrinfo = _guarded_getaddrinfo


# --------------------------------------------------------------------------
# The stub authority.
# --------------------------------------------------------------------------
def make_cert(workdir):
    """A self-signed certificate for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(workdir, "authority-cert.pem")
    key_path = os.path.join(workdir, "authority-key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


class Authority(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port, cert_path, key_path):
        super().__init__(("127.0.0.1", port), _Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        self.socket = ctx.wrap_socket(self.socket, server_side=True)
        self.requests = []
        self.base = "https://127.0.0.1:%d" % self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep stdout/stderr clean
        pass

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.server.requests.append("GET " + self.path)
        path = self.path.split("?", 1)[0]
        suffix = "/v2.0/.well-known/openid-configuration"
        if path.endswith(suffix) and path.count("/") == 4:
            tenant = path[1 : -len(suffix)]
            base = self.server.base + "/" + tenant
            self._send(
                200,
                {
                    "issuer": base + "/v2.0",
                    "authorization_endpoint": base + "/oauth2/v2.0/authorize",
                    "token_endpoint": base + "/oauth2/v2.0/token",
                    "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
                    "jwks_uri": base + "/discovery/v2.0/keys",
                    "response_types_supported": ["code", "id_token", "code id_token"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                },
            )
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self):
        self.server.requests.append("POST " + self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        # No token is ever issued here: the token must come from the cache.
        self._send(
            400,
            {
                "error": "invalid_grant",
                "error_description": "read_back.py stub authority issues no tokens",
            },
        )


# --------------------------------------------------------------------------
def check_cache_keys(path):
    """Entries whose key is not the one MSAL would build for them."""
    import msal

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return []
    makers = msal.TokenCache().key_makers
    out = []
    for kind, entries in data.items():
        maker = makers.get(kind)
        if maker is None or not isinstance(entries, dict):
            continue
        for key, entry in entries.items():
            if not isinstance(entry, dict):
                continue
            try:
                expected = maker(**entry)
            except TypeError:
                continue
            if expected != key:
                out.append({"kind": kind, "key": key, "expected": expected})
    return out


def write_clouds_config(path, cloud, authority_base):
    """Point the active cloud's authority at the stub.

    az overlays clouds.config on its built-in clouds, so for AzureCloud (and the
    other built-in names) one endpoint is enough. A cloud name az does not know
    gets the AzureCloud endpoints (az needs e.g. active_directory_resource_id
    for its default scope).
    """
    import configparser

    from azure.cli.core.cloud import AZURE_PUBLIC_CLOUD, KNOWN_CLOUDS

    clouds = configparser.ConfigParser()
    clouds.read(path)
    if not clouds.has_section(cloud):
        clouds.add_section(cloud)
        if cloud not in [c.name for c in KNOWN_CLOUDS]:
            for name, value in vars(AZURE_PUBLIC_CLOUD.endpoints).items():
                if value is not None and not name.startswith("_"):
                    clouds.set(cloud, "endpoint_" + name, value)
    clouds.set(cloud, "endpoint_active_directory", authority_base)
    with open(path, "w") as f:
        clouds.write(f)


def seed_version_check(path):
    """Tell az its version was just checked: otherwise AzCli's constructor
    (handle_version_update) asks azcliprod.blob.core.windows.net for the
    latest release, like a first `az` run does."""
    if os.path.exists(path):
        return
    from azure.cli.core import __version__

    local = {"local": __version__}
    with open(path, "w", encoding="utf-8-sig") as f:
        json.dump(
            {
                "versions": {"core": local, "azure-cli": local},
                "update_time": str(datetime.datetime.now()),
            },
            f,
        )


def read_with_az(args, result):
    """az account list / show / get-access-token, through az's Profile."""
    from azure.cli.core import get_default_cli
    from azure.cli.core._profile import Profile
    from azure.cli.core.auth import msal_credentials

    sources = []
    original_acquire = msal_credentials.UserCredential.acquire_token

    def recording_acquire(self, *a, **kw):
        r = original_acquire(self, *a, **kw)
        sources.append(r.get("token_source") if isinstance(r, dict) else None)
        return r

    msal_credentials.UserCredential.acquire_token = recording_acquire

    profile = Profile(cli_ctx=get_default_cli())
    try:
        subscriptions = profile.load_cached_subscriptions()
    except Exception as e:  # e.g. KeyError on a subscription without environmentName
        result["error"] = "load_cached_subscriptions: %s: %s" % (type(e).__name__, e)
        return
    for s in subscriptions:
        result["subscriptions"].append(
            {k: s.get(k) for k in ("id", "name", "user", "isDefault", "tenantId")}
        )
    errors = []
    try:
        result["default_subscription"] = profile.get_subscription()["id"]
    except Exception as e:  # az's CLIError: no (default) subscription
        errors.append("get_subscription: %s: %s" % (type(e).__name__, e))

    if subscriptions:
        scopes = [args.scope] if args.scope else None  # None: az's default (ARM)
        try:
            if args.tenant:
                token, _, _ = profile.get_raw_token(scopes=scopes, tenant=args.tenant)
            else:
                token, _, _ = profile.get_raw_token(scopes=scopes, subscription=args.subscription)
            _, access_token, entry = token
            result["token_sha256"] = hashlib.sha256(access_token.encode()).hexdigest()
            result["token_expires_on"] = int(entry["expires_on"])
            result["token_source"] = sources[-1] if sources else None
        except Exception as e:  # CLIError / AuthenticationError / KeyError from MSAL...
            errors.append("get_raw_token: %s: %s" % (type(e).__name__, e))
    else:
        errors.append("no subscription in the active cloud %s" % args.cloud)
    result["error"] = "; ".join(errors) or None


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--config-dir", required=True)
    p.add_argument("--authority-port", type=int, default=0, help="0 (default): a free port")
    p.add_argument("--tenant", default=None)
    p.add_argument("--scope", default=None, help="default: the cloud's ARM scope, like az")
    p.add_argument("--subscription", default=None, help="id or name; default: the default one")
    p.add_argument("--cloud", default="AzureCloud", help="active cloud whose authority is stubbed")
    args = p.parse_args(argv)
    if not os.path.isdir(args.config_dir):
        p.error("--config-dir %s is not a directory" % args.config_dir)
    return args


def main(argv):
    args = parse_args(argv)
    work = tempfile.mkdtemp(prefix="az-read-back-")
    result = {
        "subscriptions": [],
        "default_subscription": None,
        "token_sha256": None,
        "token_expires_on": None,
        "token_source": None,
        "requests": [],
        "blocked_connections": BLOCKED,
        "key_mismatches": [],
        "error": None,
    }
    server = None
    try:
        config_dir = os.path.join(work, "azure")
        shutil.copytree(args.config_dir, config_dir)
        cert_path, key_path = make_cert(work)
        server = Authority(args.authority_port, cert_path, key_path)
        threading.Thread(target=server.serve_forever, daemon=True).start()

        # Everything az reads from the environment is set before it is imported
        # (azure.cli.core.cloud reads AZURE_CONFIG_DIR at import time).
        os.environ.update(
            {
                "AZURE_CONFIG_DIR": config_dir,
                "AZURE_CLOUD_NAME": args.cloud,
                "AZURE_CORE_INSTANCE_DISCOVERY": "false",
                "AZURE_CORE_COLLECT_TELEMETRY": "false",
                "AZURE_CORE_ENCRYPT_TOKEN_CACHE": "false",
                "AZURE_CORE_NO_COLOR": "true",
                "REQUESTS_CA_BUNDLE": cert_path,
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                    "all_proxy", "CURL_CA_BUNDLE", "AZURE_ACCESS_TOKEN_FILE", "MSI_ENDPOINT",
                    "IDENTITY_ENDPOINT", "ARM_CLOUD_METADATA_URL", "AZURE_HTTP_USER_AGENT",
                    # az would add an ext_cache_key (a separate cache partition) for it:
                    "COPILOT_AGENT_SESSION_ID"):
            os.environ.pop(var, None)

        write_clouds_config(os.path.join(config_dir, "clouds.config"), args.cloud, server.base)
        seed_version_check(os.path.join(config_dir, "versionCheck.json"))
        result["key_mismatches"] = check_cache_keys(os.path.join(config_dir, "msal_token_cache.json"))
        read_with_az(args, result)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
            result["requests"] = list(server.requests)
        shutil.rmtree(work, ignore_errors=True)
    if BLOCKED and result["error"] is None:
        result["error"] = "non-loopback connections were attempted: %s" % BLOCKED
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
