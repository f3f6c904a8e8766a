# Drives SsmControlFake with botocore through the four Session Manager
# operations and every error the fake emits; run by ssm_fake_botocore.rs,
# which plays the fake's control API and asserts on what this prints.
#
# Protocol (one JSON object per line): this script prints
# {"control": {"do": ..., ...}} and reads the answer from stdin; at the end it
# prints {"result": {...}}. Nothing else may go to stdout.
#
# Each error is recorded with what botocore made of it (exception class,
# code, HTTP status) next to what the `ssm` service model says: whether the
# operation lists the error, whether the service model has an exception
# shape of that name at all, and the status the model gives it (SSM's model
# gives none). The script asserts nothing itself: the Rust side does.

import datetime
import json
import sys

import botocore
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = sys.argv[1]
ALICE = ("AKIDALICEEXAMPLE0001", "eu-west-1")
BOB = ("AKIDBOBEXAMPLE000002", "us-west-2")


def control(action, **args):
    print(json.dumps({"control": dict(do=action, **args)}), flush=True)
    line = sys.stdin.readline()
    if not line:
        sys.exit("the test stopped answering control requests")
    return json.loads(line)


session = botocore.session.get_session()
sent = {}


def count(event_name, **kwargs):
    operation = event_name.rsplit(".", 1)[-1]
    sent[operation] = sent.get(operation, 0) + 1


# What the signature mangler does to the next request (None: nothing).
mangle = {"mode": None}


def mangle_signature(request, **kwargs):
    mode, mangle["mode"] = mangle["mode"], None
    header = request.headers.get("Authorization")
    if mode is None or header is None:
        return
    if isinstance(header, bytes):
        header = header.decode()
    if mode == "drop signature":
        header = header.split(", Signature=")[0]
    elif mode == "scope to ec2":
        header = header.replace("/ssm/aws4_request", "/ec2/aws4_request")
    elif mode == "parameters as a string":
        body = json.loads(request.body)
        body["Parameters"] = "portNumber=22"
        request.body = json.dumps(body).encode()
        request.headers["Content-Length"] = str(len(request.body))
    request.headers["Authorization"] = header


# The JSON types of Session members on the wire, as botocore received them
# before parsing: botocore also accepts ISO-8601 strings for timestamps, so
# the parsed datetimes alone would not show numbers on the wire.
wire_types = {}


def record_wire_types(response_dict, **kwargs):
    if response_dict["status_code"] != 200:
        return
    for s in json.loads(response_dict["body"]).get("Sessions", []):
        for member, value in s.items():
            wire_types.setdefault(member, set()).add(type(value).__name__)


def client(identity=ALICE, validate=True, signed=True, retries=None):
    key, region = identity
    config = Config(
        retries=retries or {"total_max_attempts": 1},
        parameter_validation=validate,
        **({} if signed else {"signature_version": botocore.UNSIGNED}),
    )
    c = session.create_client(
        "ssm", region_name=region, endpoint_url=ENDPOINT, config=config,
        aws_access_key_id=key, aws_secret_access_key="secret-" + key,
    )
    c.meta.events.register("before-send", count, unique_id="ssm-fake-count")
    c.meta.events.register("before-send", mangle_signature, unique_id="ssm-fake-mangle")
    c.meta.events.register("before-parse.ssm.DescribeSessions", record_wire_types,
                           unique_id="ssm-fake-wire-types")
    return c


ssm = client()
bob = client(BOB)
# Without botocore's own input validation, to send the fake requests that
# break the model (its ValidationException and SerializationException).
raw = client(validate=False)
unsigned = client(signed=False)
retrying = client(retries={"mode": "standard", "max_attempts": 3})

model = ssm.meta.service_model
errors = []


def plain(value):
    """Keeps what botocore parsed, datetimes marked as such."""
    if isinstance(value, datetime.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def expect_error(c, operation, case, **params):
    """Calls `operation` expecting an error, and records botocore's parse."""
    method = getattr(c, botocore.xform_name(operation))
    record = {"case": case, "operation": operation}
    try:
        method(**params)
        record["code"] = None
    except ClientError as e:
        code = e.response["Error"]["Code"]
        op_model = model.operation_model(operation)
        listed = {s.name: s for s in op_model.error_shapes}
        in_model = code in model.shape_names and model.shape_for(code).metadata.get("exception", False)
        shape = model.shape_for(code) if in_model else None
        modelled_class = getattr(c.exceptions, code, None)
        record.update(
            code=code,
            status=e.response["ResponseMetadata"]["HTTPStatusCode"],
            listed=code in listed,
            in_model=bool(in_model),
            model_status=(shape.metadata.get("error") or {}).get("httpStatusCode") if shape else None,
            exception=type(e).__name__,
            is_modelled_class=modelled_class is not None and type(e) is modelled_class,
            message=e.response["Error"].get("Message"),
            request_id=bool(e.response["ResponseMetadata"].get("RequestId")),
        )
    errors.append(record)


out = {}
T = {"i1": "i-0123456789abcdef0", "i2": "i-0fedcba9876543210", "mi": "mi-0123456789abcdef0",
     "off": "i-00000000000000off", "unknown": "i-0aaaaaaaaaaaaaaaa"}

# ----- StartSession ------------------------------------------------------------
shell = ssm.start_session(Target=T["i1"], Reason="botocore check")
out["shell"] = plain(shell)
port = ssm.start_session(
    Target=T["i2"], DocumentName="AWS-StartPortForwardingSession",
    Parameters={"portNumber": ["22"], "localPortNumber": ["0"]},
)
out["port"] = plain(port)
ssh = bob.start_session(Target=T["mi"], DocumentName="AWS-StartSSHSession",
                        Parameters={"portNumber": ["22"]})
out["ssh"] = plain(ssh)
out["ssh_record"] = control("session", session_id=ssh["SessionId"])

expect_error(ssm, "StartSession", "unknown target", Target=T["unknown"])
expect_error(ssm, "StartSession", "offline target", Target=T["off"])
expect_error(ssm, "StartSession", "unknown document", Target=T["i1"],
             DocumentName="AWS-NoSuchDocument")
expect_error(ssm, "StartSession", "document name off the pattern", Target=T["i1"],
             DocumentName="bad name!")
expect_error(ssm, "StartSession", "reason over 256 characters", Target=T["i1"],
             Reason="r" * 257)
expect_error(raw, "StartSession", "no Target", Reason="x")
mangle["mode"] = "parameters as a string"
expect_error(ssm, "StartSession", "parameters not a map", Target=T["i1"])
control("fail_next_call_of", operation="StartSession")
expect_error(ssm, "StartSession", "injected server error", Target=T["i1"])
control("throttle_next_call_of", operation="StartSession")
expect_error(ssm, "StartSession", "throttled", Target=T["i1"])
expect_error(unsigned, "StartSession", "unsigned", Target=T["i1"])
mangle["mode"] = "drop signature"
expect_error(ssm, "StartSession", "signature missing", Target=T["i1"])
mangle["mode"] = "scope to ec2"
expect_error(ssm, "StartSession", "scoped to ec2", Target=T["i1"])

# ----- The data channel's side, and ResumeSession ----------------------------------
sid = shell["SessionId"]
out["consume"] = [
    control("consume_token", session_id=sid, token=shell["TokenValue"]),
    control("consume_token", session_id=sid, token=shell["TokenValue"]),
]
out["connected"] = control("connected", session_id=sid)
resumed = ssm.resume_session(SessionId=sid)
out["resumed"] = plain(resumed)
out["consume_after_resume"] = [
    control("consume_token", session_id=sid, token=shell["TokenValue"]),
    control("consume_token", session_id=sid, token=resumed["TokenValue"]),
]
out["disconnected"] = [
    control("connected", session_id=port["SessionId"]),
    control("disconnected", session_id=port["SessionId"]),
]
out["port_resumed"] = plain(ssm.resume_session(SessionId=port["SessionId"]))
control("time_out", session_id=port["SessionId"])
out["timed_out"] = plain(ssm.resume_session(SessionId=port["SessionId"]))
expect_error(ssm, "ResumeSession", "unknown session", SessionId="alice-0123456789abcdef0")
control("fail_next_call_of", operation="ResumeSession")
expect_error(ssm, "ResumeSession", "injected server error", SessionId=sid)
control("throttle_next_call_of", operation="ResumeSession")
expect_error(ssm, "ResumeSession", "throttled", SessionId=sid)
expect_error(raw, "ResumeSession", "no SessionId")

# ----- More sessions an hour later, for paging and the date filters --------------------
control("advance", seconds=3600)
later = [ssm.start_session(Target=T["i1"])["SessionId"] for _ in range(5)]
control("set_access_type", session_id=ssh["SessionId"], access_type="JustInTime")
control("set_details", session_id=later[0], details="started for paging")

# ----- DescribeSessions: filters of each key --------------------------------------------
def ids(**params):
    sessions = ssm.describe_sessions(**params)["Sessions"]
    return [s["SessionId"] for s in sessions]


def by(key, value, state="Active"):
    return ids(State=state, Filters=[{"key": key, "value": value}])


alice_owner = "arn:aws:sts::111122223333:assumed-role/Admin/alice"
bob_owner = "arn:aws:iam::111122223333:user/bob"
out["filters"] = {
    "all": ids(State="Active"),
    "InvokedAfter": by("InvokedAfter", "2024-08-29T10:30:00Z"),
    "InvokedBefore": by("InvokedBefore", "2024-08-29T10:30:00Z"),
    "Target": by("Target", T["i2"]),
    "Owner alice": by("Owner", alice_owner),
    "Owner bob": by("Owner", bob_owner),
    "Status Connected": by("Status", "Connected"),
    "Status Disconnected": by("Status", "Disconnected"),
    "Status Connecting": by("Status", "Connecting"),
    "SessionId": by("SessionId", sid),
    "AccessType JustInTime": by("AccessType", "JustInTime"),
    "AccessType Standard": by("AccessType", "Standard"),
    "Target and InvokedBefore": ids(State="Active", Filters=[
        {"key": "Target", "value": T["i1"]},
        {"key": "InvokedBefore", "value": "2024-08-29T10:30:00Z"}]),
}
out["described"] = plain(ssm.describe_sessions(State="Active")["Sessions"])

# ----- Paging: eight active sessions in pages of three --------------------------------
pages = list(ssm.get_paginator("describe_sessions").paginate(
    State="Active", PaginationConfig={"PageSize": 3}))
out["paging"] = {
    "pages": len(pages),
    "sizes": [len(p["Sessions"]) for p in pages],
    "next_tokens": sum(1 for p in pages if "NextToken" in p),
    "ids": [s["SessionId"] for p in pages for s in p["Sessions"]],
}
first = ssm.describe_sessions(State="Active", MaxResults=2)
expect_error(ssm, "DescribeSessions", "next token of another listing", State="History",
             NextToken=first["NextToken"])
expect_error(ssm, "DescribeSessions", "garbage next token", State="Active", NextToken="nope")
expect_error(ssm, "DescribeSessions", "unknown filter key", State="Active",
             Filters=[{"key": "Region", "value": "eu-west-1"}])
expect_error(ssm, "DescribeSessions", "filter key in the wrong case", State="Active",
             Filters=[{"key": "target", "value": T["i1"]}])
expect_error(ssm, "DescribeSessions", "MaxResults over 200", State="Active", MaxResults=201)
expect_error(raw, "DescribeSessions", "MaxResults 0", State="Active", MaxResults=0)
expect_error(raw, "DescribeSessions", "no State")
expect_error(ssm, "DescribeSessions", "unknown State", State="Live")
expect_error(ssm, "DescribeSessions", "InvokedAfter not a date", State="Active",
             Filters=[{"key": "InvokedAfter", "value": "yesterday"}])
expect_error(ssm, "DescribeSessions", "unknown Status value", State="Active",
             Filters=[{"key": "Status", "value": "Sleeping"}])
expect_error(ssm, "DescribeSessions", "seven filters", State="Active",
             Filters=[{"key": "Target", "value": T["i1"]}] * 7)
control("fail_next_call_of", operation="DescribeSessions")
expect_error(ssm, "DescribeSessions", "injected server error", State="Active")
control("throttle_next_call_of", operation="DescribeSessions")
expect_error(ssm, "DescribeSessions", "throttled", State="Active")
expect_error(unsigned, "DescribeSessions", "unsigned", State="Active")

# botocore retries both injected failures by itself.
before = sent.get("DescribeSessions", 0)
control("fail_next_call_of", operation="DescribeSessions")
control("throttle_next_call_of", operation="DescribeSessions")
out["retried"] = {
    "sessions": len(retrying.describe_sessions(State="Active")["Sessions"]),
    "attempts": sent.get("DescribeSessions", 0) - before,
}

# ----- TerminateSession ----------------------------------------------------------------
control("advance", seconds=90)
out["terminated"] = plain(ssm.terminate_session(SessionId=sid))
out["terminated_again"] = plain(ssm.terminate_session(SessionId=sid))
out["terminated_unknown"] = plain(ssm.terminate_session(SessionId="alice-00000000000000000"))
out["terminated_record"] = control("session", session_id=sid)
expect_error(ssm, "ResumeSession", "terminated session", SessionId=sid)
control("fail_next_call_of", operation="TerminateSession")
expect_error(ssm, "TerminateSession", "injected server error", SessionId=port["SessionId"])
expect_error(raw, "TerminateSession", "no SessionId")
control("hold_terminating", hold=True)
ssm.terminate_session(SessionId=later[1])
out["held"] = {
    "active": by("Status", "Terminating"),
    "history": ids(State="History"),
}
control("finish_terminating", session_id=later[1])
out["history"] = plain(ssm.describe_sessions(State="History")["Sessions"])
out["history_by_id"] = by("SessionId", sid, state="History")
out["active_after"] = ids(State="Active")

out["wire_types"] = {k: sorted(v) for k, v in wire_types.items()}
out["errors"] = errors
out["sent"] = sent
print(json.dumps({"result": out}), flush=True)
