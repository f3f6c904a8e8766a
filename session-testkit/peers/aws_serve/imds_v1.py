"""botocore's own IMDSv1 requests (no token) to session_aws::serve.

botocore sends a GET without a token when its token PUT fails (403, 404,
405) or times out. This calls that path of InstanceMetadataFetcher
directly, against argv[1], and prints as JSON whether it was answered:
{"v1": "accepted", "role": ..., "fields": [...]}, or
{"v1": "refused", "statuses": [...]} with the HTTP statuses botocore
logged for the refused requests. Never prints a credential.
"""
import json
import logging
import sys

from botocore.utils import InstanceMetadataFetcher


class Statuses(logging.Handler):
    """Collects the status codes of botocore's "non-200 response" logs."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.statuses = []

    def emit(self, record):
        if record.getMessage().startswith("Metadata service returned non-200"):
            self.statuses.append(record.args[1])


statuses = Statuses()
botocore_log = logging.getLogger("botocore.utils")
botocore_log.setLevel(logging.DEBUG)
botocore_log.addHandler(statuses)

fetcher = InstanceMetadataFetcher(timeout=2, num_attempts=1, base_url=sys.argv[1])
if fetcher._disabled:
    # Otherwise botocore "fails" without sending anything.
    raise SystemExit("AWS_EC2_METADATA_DISABLED is true: botocore would not ask")
try:
    role = fetcher._get_iam_role(token=None)
    credentials = fetcher._get_credentials(role, token=None)
except fetcher._RETRIES_EXCEEDED_ERROR_CLS:
    # botocore's answer to a non-200 after its attempts.
    print(json.dumps({"v1": "refused", "statuses": statuses.statuses}))
else:
    print(json.dumps({"v1": "accepted", "role": role, "fields": sorted(credentials)}))
