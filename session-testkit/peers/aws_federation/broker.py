"""A custom identity broker, as the IAM User Guide describes one
("Enable custom identity broker access to the AWS console", the Python
procedure), pointed at a federation endpoint given on the command line.

Run by session-testkit/tests/aws_federation_fake.rs against the fake
federation endpoint, to check the fake with a client that is not ours.

    python broker.py FEDERATION_URL DESTINATION ISSUER [SESSION_DURATION]

The temporary credentials come from the environment (BROKER_ACCESS_KEY_ID,
BROKER_SECRET_ACCESS_KEY, BROKER_SESSION_TOKEN; the token may be absent),
so that they never show in a process listing. stdout is one JSON object
that holds no secret: the status of each step, and where login redirects.
"""

import json
import os
import sys
import urllib.parse

import requests


def main():
    federation_url, destination, issuer = sys.argv[1:4]
    session_duration = sys.argv[4] if len(sys.argv) > 4 else None

    # Step 3: the temporary credentials as the JSON session string.
    credentials = {
        "sessionId": os.environ["BROKER_ACCESS_KEY_ID"],
        "sessionKey": os.environ["BROKER_SECRET_ACCESS_KEY"],
    }
    if os.environ.get("BROKER_SESSION_TOKEN"):
        credentials["sessionToken"] = os.environ["BROKER_SESSION_TOKEN"]
    session_json = json.dumps(credentials)

    # Steps 4 and 5: URL-encode it (quote_plus, as the guide says) and ask
    # the federation endpoint for a sign-in token.
    query = "?Action=getSigninToken"
    if session_duration is not None:
        query += "&SessionDuration=" + session_duration
    query += "&Session=" + urllib.parse.quote_plus(session_json)
    answer = requests.get(federation_url + query, timeout=10)
    report = {"token_status": answer.status_code}
    if answer.status_code != 200:
        print(json.dumps(report))
        return
    signin_token = json.loads(answer.text)["SigninToken"]
    report["token_length"] = len(signin_token)

    # Step 6: the sign-in URL. Opening it is what a browser does; the
    # redirect is not followed, so that the answer itself can be checked.
    query = "?Action=login"
    query += "&Issuer=" + urllib.parse.quote_plus(issuer)
    query += "&Destination=" + urllib.parse.quote_plus(destination)
    query += "&SigninToken=" + signin_token
    login = requests.get(federation_url + query, allow_redirects=False, timeout=10)
    report["login_status"] = login.status_code
    report["location"] = login.headers.get("Location")

    # A sign-in token is good for one login.
    again = requests.get(federation_url + query, allow_redirects=False, timeout=10)
    report["second_login_status"] = again.status_code
    print(json.dumps(report))


if __name__ == "__main__":
    main()
