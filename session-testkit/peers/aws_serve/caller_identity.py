"""boto3's default credential chain, then sts:GetCallerIdentity.

Run by session-aws/tests/serve_botocore.rs with no keys and no profile in
the environment, only the variables of one of session_aws::serve's
endpoints (and AWS_ENDPOINT_URL pointing at moto). Prints, as JSON, which
provider of the chain found credentials ("container-role" for the ECS
endpoint, "iam-role" for IMDS), the access key id it got (an identifier,
not a secret) and the caller's ARN. Never prints a secret.
"""
import json

import boto3

session = boto3.Session()
credentials = session.get_credentials()
if credentials is None:
    raise SystemExit("botocore found no credentials")
identity = session.client("sts", region_name="us-east-1").get_caller_identity()
print(json.dumps({
    "method": credentials.method,
    "access_key_id": credentials.get_frozen_credentials().access_key,
    "arn": identity["Arn"],
}))
