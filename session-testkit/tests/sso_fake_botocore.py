# Drives SsoFake with botocore through every operation the fake implements
# and every error it emits; run by sso_fake_botocore.rs, which plays the
# fake's control API and asserts on what this prints.
#
# Protocol (one JSON object per line): this script prints
# {"control": {"do": ..., ...}} and reads the answer from stdin; at the end it
# prints {"result": {...}}. Nothing else may go to stdout.
#
# Each error is recorded with what botocore made of it (exception class,
# code, HTTP status, OAuth members) next to what the service model says for
# that operation (`modelled_status`: None when the model does not list the
# error for it). The script asserts nothing itself: the Rust side does.

import json
import sys

import botocore
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = sys.argv[1]
START_URL = "https://d-123.awsapps.com/start"
ACCOUNT = "111122223333"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def control(action, **args):
    print(json.dumps({"control": dict(do=action, **args)}), flush=True)
    line = sys.stdin.readline()
    if not line:
        sys.exit("the test stopped answering control requests")
    return json.loads(line)


session = botocore.session.get_session()


def client(service, validate=True):
    # Unsigned, one attempt: every request botocore sends is one the fake
    # counts, and an error is botocore's parse of the fake's answer.
    config = Config(
        signature_version=botocore.UNSIGNED,
        retries={"total_max_attempts": 1},
        parameter_validation=validate,
    )
    return session.create_client(
        service, region_name="us-east-1", endpoint_url=ENDPOINT, config=config
    )


oidc = client("sso-oidc")
portal = client("sso")
# Without botocore's own input validation, to send the fake requests that
# lack a required member (its InvalidRequestException).
raw_oidc = client("sso-oidc", validate=False)
raw_portal = client("sso", validate=False)

sent = {}


def count(event_name, **kwargs):
    operation = event_name.rsplit(".", 1)[-1]
    sent[operation] = sent.get(operation, 0) + 1


for c in (oidc, portal, raw_oidc, raw_portal):
    c.meta.events.register("before-send", count, unique_id="sso-fake-count")

errors = []


def expect_error(c, operation, case, **params):
    """Calls `operation` expecting an error, and records botocore's parse."""
    method = getattr(c, botocore.xform_name(operation))
    record = {"case": case, "operation": operation}
    try:
        method(**params)
        record["code"] = None
    except ClientError as e:
        code = e.response["Error"]["Code"]
        model = c.meta.service_model.operation_model(operation)
        modelled = {s.name: s.metadata["error"]["httpStatusCode"] for s in model.error_shapes}
        modelled_class = getattr(c.exceptions, code, None)
        record.update(
            code=code,
            status=e.response["ResponseMetadata"]["HTTPStatusCode"],
            modelled_status=modelled.get(code),
            exception=type(e).__name__,
            is_modelled_class=modelled_class is not None and type(e) is modelled_class,
            message=e.response["Error"].get("Message"),
            error=e.response.get("error"),
            has_error_description=bool(e.response.get("error_description")),
            request_id=bool(e.response["ResponseMetadata"].get("RequestId")),
        )
    errors.append(record)


out = {}

# ----- RegisterClient -----------------------------------------------------
reg = oidc.register_client(
    clientName="botocore", clientType="public", scopes=["sso:account:access"]
)
out["register"] = {k: v for k, v in reg.items() if k != "ResponseMetadata"}
client_id, secret = reg["clientId"], reg["clientSecret"]
expect_error(oidc, "RegisterClient", "confidential client type",
             clientName="botocore", clientType="confidential")
expect_error(raw_oidc, "RegisterClient", "no clientName", clientType="public")
control("fail_next_call_of", operation="RegisterClient", status=500,
        error_type="InternalServerException")
expect_error(oidc, "RegisterClient", "injected server error",
             clientName="botocore", clientType="public")

# ----- StartDeviceAuthorization ---------------------------------------------
def start():
    return oidc.start_device_authorization(
        clientId=client_id, clientSecret=secret, startUrl=START_URL
    )


auth = start()
out["start"] = {k: v for k, v in auth.items() if k != "ResponseMetadata"}
expect_error(oidc, "StartDeviceAuthorization", "wrong client secret",
             clientId=client_id, clientSecret="not-the-secret", startUrl=START_URL)
expect_error(raw_oidc, "StartDeviceAuthorization", "no startUrl",
             clientId=client_id, clientSecret=secret)
control("fail_next_call_of", operation="StartDeviceAuthorization", status=500,
        error_type="InternalServerException")
expect_error(oidc, "StartDeviceAuthorization", "injected server error",
             clientId=client_id, clientSecret=secret, startUrl=START_URL)

# ----- CreateToken, device-code grant ----------------------------------------
def poll(case, device_code, **overrides):
    params = dict(clientId=client_id, clientSecret=secret, grantType=DEVICE_GRANT,
                  deviceCode=device_code)
    params.update(overrides)
    expect_error(oidc, "CreateToken", case, **params)


out["pending_user_codes"] = control("pending_user_codes")
poll("pending", auth["deviceCode"])
control("slow_down_next", n=1)
poll("polled too fast", auth["deviceCode"])
poll("unsupported grant type", auth["deviceCode"], grantType="urn:example:unsupported")
poll("wrong client secret", auth["deviceCode"], clientSecret="not-the-secret")
expect_error(oidc, "CreateToken", "no deviceCode",
             clientId=client_id, clientSecret=secret, grantType=DEVICE_GRANT)
poll("unknown device code", "not-a-device-code")
control("fail_next_call_of", operation="CreateToken", status=500,
        error_type="InternalServerException")
poll("injected server error", auth["deviceCode"])

out["approved"] = control("approve", user_code=auth["userCode"])
token = oidc.create_token(clientId=client_id, clientSecret=secret,
                          grantType=DEVICE_GRANT, deviceCode=auth["deviceCode"])
out["device_token"] = {k: v for k, v in token.items() if k != "ResponseMetadata"}
poll("device code used twice", auth["deviceCode"])

denied = start()
out["denied"] = control("deny", user_code=denied["userCode"])
poll("denied", denied["deviceCode"])

expired = start()
control("expire_device_codes")
poll("device code expired", expired["deviceCode"])

# ----- CreateToken, refresh-token grant (rotation) ---------------------------
def refresh(refresh_token):
    return oidc.create_token(clientId=client_id, clientSecret=secret,
                             grantType="refresh_token", refreshToken=refresh_token)


def refuse_refresh(case, refresh_token):
    expect_error(oidc, "CreateToken", case, clientId=client_id, clientSecret=secret,
                 grantType="refresh_token", refreshToken=refresh_token)


first_refresh = token["refreshToken"]
rotated = refresh(first_refresh)
out["rotated"] = {k: v for k, v in rotated.items() if k != "ResponseMetadata"}
refuse_refresh("refresh token used twice", first_refresh)
# The rotated refresh token works (and is itself rotated).
again = refresh(rotated["refreshToken"])
out["rotated_again"] = {k: v for k, v in again.items() if k != "ResponseMetadata"}
refuse_refresh("unknown refresh token", "not-a-refresh-token")
access_token = again["accessToken"]

# ----- GetRoleCredentials ------------------------------------------------------
def role_credentials(role):
    return portal.get_role_credentials(accessToken=access_token, accountId=ACCOUNT,
                                       roleName=role)["roleCredentials"]


out["credentials"] = [role_credentials("Admin"), role_credentials("ReadOnly")]
expect_error(portal, "GetRoleCredentials", "role not assigned",
             accessToken=access_token, accountId=ACCOUNT, roleName="NotMine")
expect_error(raw_portal, "GetRoleCredentials", "no role_name",
             accessToken=access_token, accountId=ACCOUNT)
expect_error(portal, "GetRoleCredentials", "unknown access token",
             accessToken="made-up", accountId=ACCOUNT, roleName="Admin")
control("throttle_next", n=1)
expect_error(portal, "GetRoleCredentials", "throttled",
             accessToken=access_token, accountId=ACCOUNT, roleName="Admin")
control("fail_next_call_of", operation="GetRoleCredentials", status=404,
        error_type="ResourceNotFoundException")
expect_error(portal, "GetRoleCredentials", "injected not found",
             accessToken=access_token, accountId=ACCOUNT, roleName="Admin")

# ----- ListAccounts ------------------------------------------------------------
def paginate(operation, **params):
    pages = list(portal.get_paginator(operation).paginate(
        accessToken=access_token, PaginationConfig={"PageSize": 2}, **params))
    key = "accountList" if operation == "list_accounts" else "roleList"
    return {"pages": len(pages), "items": [i for p in pages for i in p[key]],
            "next_tokens": sum(1 for p in pages if "nextToken" in p)}


out["accounts"] = paginate("list_accounts")
# botocore checks only the model's minimum, so 101 reaches the fake.
expect_error(portal, "ListAccounts", "max_result over 100",
             accessToken=access_token, maxResults=101)
expect_error(portal, "ListAccounts", "unknown next token",
             accessToken=access_token, nextToken="not-a-token")
expect_error(portal, "ListAccounts", "unknown access token", accessToken="made-up")
control("throttle_next", n=1)
expect_error(portal, "ListAccounts", "throttled", accessToken=access_token)
control("fail_next_call_of", operation="ListAccounts", status=404,
        error_type="ResourceNotFoundException")
expect_error(portal, "ListAccounts", "injected not found", accessToken=access_token)

# ----- ListAccountRoles ----------------------------------------------------------
out["roles"] = paginate("list_account_roles", accountId=ACCOUNT)
accounts_page = portal.list_accounts(accessToken=access_token, maxResults=1)
expect_error(raw_portal, "ListAccountRoles", "no account_id", accessToken=access_token)
expect_error(portal, "ListAccountRoles", "next token of another listing",
             accessToken=access_token, accountId=ACCOUNT,
             nextToken=accounts_page["nextToken"])
expect_error(portal, "ListAccountRoles", "unknown access token",
             accessToken="made-up", accountId=ACCOUNT)
control("throttle_next", n=1)
expect_error(portal, "ListAccountRoles", "throttled", accessToken=access_token,
             accountId=ACCOUNT)
control("fail_next_call_of", operation="ListAccountRoles", status=404,
        error_type="ResourceNotFoundException")
expect_error(portal, "ListAccountRoles", "injected not found",
             accessToken=access_token, accountId=ACCOUNT)

# ----- Access-token expiry: the portal refuses, a refresh still works ----------
control("expire_access_tokens")
expect_error(portal, "ListAccounts", "expired access token", accessToken=access_token)
renewed = refresh(again["refreshToken"])
out["renewed"] = {k: v for k, v in renewed.items() if k != "ResponseMetadata"}
access_token = renewed["accessToken"]

# ----- Logout ----------------------------------------------------------------------
control("throttle_next", n=1)
expect_error(portal, "Logout", "throttled", accessToken=access_token)
expect_error(portal, "Logout", "unknown access token", accessToken="made-up")
logout = portal.logout(accessToken=access_token)
out["logout"] = {"status": logout["ResponseMetadata"]["HTTPStatusCode"],
                 "members": sorted(k for k in logout if k != "ResponseMetadata")}
expect_error(portal, "GetRoleCredentials", "logged-out access token",
             accessToken=access_token, accountId=ACCOUNT, roleName="Admin")
expect_error(portal, "ListAccountRoles", "logged-out access token",
             accessToken=access_token, accountId=ACCOUNT)
expect_error(portal, "Logout", "logged-out access token", accessToken=access_token)
refuse_refresh("logged-out refresh token", renewed["refreshToken"])

# ----- Expired client registration ---------------------------------------------------
control("expire_registrations")
expect_error(oidc, "StartDeviceAuthorization", "expired registration",
             clientId=client_id, clientSecret=secret, startUrl=START_URL)
refuse_refresh("expired registration", again["refreshToken"])

out["errors"] = errors
out["sent"] = sent
print(json.dumps({"result": out}), flush=True)
