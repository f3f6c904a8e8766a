"""One boto3 STS client calling sts:GetCallerIdentity for argv[1] seconds.

Its credentials come from session_aws::serve's ECS endpoint. botocore
refreshes container credentials by itself whenever less than 15 minutes are
left, so with the short-lived credentials the test serves, it asks the
endpoint again before (almost) every call and picks up each rotation.

Prints, as JSON: how many calls were made, the errors (type and message;
botocore's messages hold no secret), the distinct access key ids seen in
order, and the distinct caller ARNs. Never prints a secret.
"""
import json
import sys
import time

import boto3

seconds = float(sys.argv[1])
session = boto3.Session()
credentials = session.get_credentials()
if credentials is None:
    raise SystemExit("botocore found no credentials")
sts = session.client("sts", region_name="us-east-1")

calls = 0
errors = []
access_key_ids = []
arns = []
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    calls += 1
    try:
        arn = sts.get_caller_identity()["Arn"]
        if arn not in arns:
            arns.append(arn)
    except Exception as error:  # every failure is reported, none is fatal
        errors.append(f"{type(error).__name__}: {error}")
    key = credentials.get_frozen_credentials().access_key
    if key not in access_key_ids:
        access_key_ids.append(key)
    # A client that keeps working, without hammering moto.
    time.sleep(0.05)

print(json.dumps({
    "calls": calls,
    "errors": errors,
    "access_key_ids": access_key_ids,
    "arns": arns,
    "method": credentials.method,
}))
