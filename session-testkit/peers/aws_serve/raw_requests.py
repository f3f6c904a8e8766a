"""Raw HTTP requests (Python's urllib, not botocore) to session_aws::serve.

The requests the SDKs never make, or make only on failure paths: a missing
or wrong ECS token, a foreign Host header (the DNS-rebinding guard), an
IMDSv2 token PUT through a proxy (X-Forwarded-For), bad token TTLs, IMDSv1
and forged IMDS tokens. Reads ECS_URI and ECS_TOKEN (ECS checks) and
IMDS_ENDPOINT (IMDS checks) from the environment, whichever are set.

Prints, as JSON, each check's status code, and whether any answer repeated
a token that was sent. Never prints a token or a credential.
"""
import json
import os
import urllib.error
import urllib.parse
import urllib.request


def request(method, url, headers=None):
    """(status, body) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


results = {}
echoed = []


def check(name, method, url, headers=None, sent=()):
    status, body = request(method, url, headers)
    results[name] = status
    if any(value and value in body for value in sent):
        echoed.append(name)
    return status, body


ecs_uri = os.environ.get("ECS_URI")
if ecs_uri:
    token = os.environ["ECS_TOKEN"]
    port = urllib.parse.urlsplit(ecs_uri).port
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    check("ecs_missing_token", "GET", ecs_uri, sent=[token])
    check("ecs_wrong_token", "GET", ecs_uri, {"Authorization": wrong}, [token, wrong])
    check("ecs_foreign_host", "GET", ecs_uri,
          {"Authorization": token, "Host": f"rebind.example:{port}"}, [token])
    status, body = check("ecs_right_token", "GET", ecs_uri, {"Authorization": token})
    if status == 200:
        results["ecs_fields"] = sorted(json.loads(body))

imds = os.environ.get("IMDS_ENDPOINT")
if imds:
    port = urllib.parse.urlsplit(imds).port
    token_url = imds + "/latest/api/token"
    roles_url = imds + "/latest/meta-data/iam/security-credentials/"
    ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    check("imds_v1_roles", "GET", roles_url)
    check("imds_forged_token", "GET", roles_url,
          {"X-aws-ec2-metadata-token": "forged-token"}, ["forged-token"])
    check("imds_put_forwarded", "PUT", token_url,
          {**ttl, "X-Forwarded-For": "203.0.113.7"})
    check("imds_put_no_ttl", "PUT", token_url)
    check("imds_put_ttl_too_long", "PUT", token_url,
          {"X-aws-ec2-metadata-token-ttl-seconds": "21601"})
    check("imds_put_foreign_host", "PUT", token_url,
          {**ttl, "Host": f"rebind.example:{port}"})
    status, token = check("imds_put", "PUT", token_url, ttl)
    if status == 200:
        header = {"X-aws-ec2-metadata-token": token}
        status, role = check("imds_v2_roles", "GET", roles_url, header, [])
        if status == 200:
            results["imds_role"] = role
            status, body = check("imds_v2_credentials", "GET", roles_url + role, header)
            if status == 200:
                document = json.loads(body)
                results["imds_fields"] = sorted(document)
                results["imds_code"] = document["Code"]
            check("imds_other_role", "GET", roles_url + "someone-else", header)
        check("imds_v2_foreign_host", "GET", roles_url,
              {**header, "Host": f"rebind.example:{port}"}, [token])

results["echoed"] = echoed
print(json.dumps(results))
