"""Login+logout pairs per second with DMTF's `redfish` library (the Python
side of `benches/redfish_client.rs`, run by it as a subprocess).

Usage: python redfish_python_login.py BASE_URL USERNAME CAFILE PAIRS WARMUP
The password is read from the REDFISH_BENCH_PASSWORD environment variable.

Two variants, each timed with time.perf_counter() over PAIRS pairs after
WARMUP untimed ones (interpreter start-up and imports are not timed):

- "fresh": the library's documented flow per pair: redfish_client(...)
  (GET /redfish/v1/ on a new requests.Session), login(auth="session")
  (POST to Links.Sessions), logout() (DELETE the session; closes the
  requests.Session).
- "reuse": one client object made once (untimed); per pair login() and
  logout() on it. logout() closes the client's connection pool, so every
  login opens a new connection.
- "keepalive": the like-for-like counterpart of our one-provider variant:
  one client made once (untimed), then per pair the library's own post()
  to Links.Sessions (the login) and delete() of the new session with its
  X-Auth-Token, without login()/logout(), so the client's requests.Session
  keeps its one connection alive across pairs.

Before timing, a few extra pairs run with requests.Session.send and
urllib3's HTTPS connection set-up wrapped in counters, to report how many
HTTP requests and new TCP+TLS connections one pair costs; the wrappers are
removed before the timed runs.

Prints one JSON object on the last line of stdout.
"""

import json
import os
import sys
import time

import redfish
import requests
import urllib3
import urllib3.connectionpool

# A pair slower than this is counted as a stall (the bench reports them).
STALL_SECONDS = 0.020


def fresh_pair(url, user, password, cafile):
    client = redfish.redfish_client(
        base_url=url, username=user, password=password, cafile=cafile
    )
    client.login(auth="session")
    if not client.get_session_key():
        raise RuntimeError("login returned no X-Auth-Token")
    client.logout()


def reuse_pair(client):
    client.login(auth="session")
    if not client.get_session_key():
        raise RuntimeError("login returned no X-Auth-Token")
    client.logout()


def keepalive_pair(client, sessions_uri, user, password):
    login = client.post(sessions_uri, body={"UserName": user, "Password": password})
    token = login.getheader("X-Auth-Token")
    location = login.getheader("Location")
    if login.status != 201 or not token or not location:
        raise RuntimeError("login answered %d without a token or location" % login.status)
    gone = client.delete(location, headers={"X-Auth-Token": token})
    if gone.status not in (200, 204):
        raise RuntimeError("logout answered %d" % gone.status)


def counted(run, pairs):
    """Requests and new connections per pair while running `run` `pairs` times."""
    counts = {"requests": 0, "connections": 0}
    send = requests.Session.send
    new_conn = urllib3.connectionpool.HTTPSConnectionPool._new_conn

    def counting_send(self, *args, **kwargs):
        counts["requests"] += 1
        return send(self, *args, **kwargs)

    def counting_new_conn(self, *args, **kwargs):
        counts["connections"] += 1
        return new_conn(self, *args, **kwargs)

    requests.Session.send = counting_send
    urllib3.connectionpool.HTTPSConnectionPool._new_conn = counting_new_conn
    try:
        for _ in range(pairs):
            run()
    finally:
        requests.Session.send = send
        urllib3.connectionpool.HTTPSConnectionPool._new_conn = new_conn
    return {
        "requests_per_pair": counts["requests"] / pairs,
        "connections_per_pair": counts["connections"] / pairs,
    }


def timed(run, pairs, warmup):
    for _ in range(warmup):
        run()
    clock = time.perf_counter
    each = []
    started = clock()
    for _ in range(pairs):
        before = clock()
        run()
        each.append(clock() - before)
    seconds = clock() - started
    each.sort()
    return {
        "pairs": pairs,
        "seconds": seconds,
        "pairs_per_second": pairs / seconds,
        "median_ms": each[len(each) // 2] * 1000,
        "stalls": sum(1 for s in each if s > STALL_SECONDS),
    }


def main():
    url, user, cafile = sys.argv[1], sys.argv[2], sys.argv[3]
    pairs, warmup = int(sys.argv[4]), int(sys.argv[5])
    password = os.environ["REDFISH_BENCH_PASSWORD"]

    def fresh():
        fresh_pair(url, user, password, cafile)

    reused = redfish.redfish_client(
        base_url=url, username=user, password=password, cafile=cafile
    )

    def reuse():
        reuse_pair(reused)

    kept = redfish.redfish_client(
        base_url=url, username=user, password=password, cafile=cafile
    )
    sessions_uri = kept.root["Links"]["Sessions"]["@odata.id"]

    def keepalive():
        keepalive_pair(kept, sessions_uri, user, password)

    out = {
        "library": "redfish " + getattr(redfish, "__version__", "?"),
        "requests": requests.__version__,
        "urllib3": urllib3.__version__,
        "python": sys.version.split()[0],
    }
    for name, run in (("fresh", fresh), ("reuse", reuse), ("keepalive", keepalive)):
        run()  # the steady state: "reuse" has an open connection only at first
        result = counted(run, 5)
        result.update(timed(run, pairs, warmup))
        out[name] = result
    print(json.dumps(out))


if __name__ == "__main__":
    main()
