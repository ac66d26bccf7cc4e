"""Schemathesis hooks for scripts/schemathesis.sh: how the fuzzer authenticates.

The admin that scripts/schemathesis.sh bootstrapped logs in once with a web session
(cookie and CSRF token), which the fuzzer never sees, so it cannot end it. Every bearer
token the fuzzer uses is minted through that session: when one stops working (the fuzzer
called logout with it, or revoked it through /api/v1/tokens), Schemathesis asks for a
fresh one on the 401 and replays the request.
"""

import json
import os
import urllib.request

import schemathesis

URL = os.environ["MOSAIC_SCHEMATHESIS_URL"]
USERNAME = os.environ["MOSAIC_SCHEMATHESIS_USERNAME"]
PASSWORD = os.environ["MOSAIC_SCHEMATHESIS_PASSWORD"]


def _call(method, path, body=None, headers=None):
    request = urllib.request.Request(
        URL + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers, json.loads(response.read() or b"null")


class _Session:
    cookie = None
    csrf = None

    @classmethod
    def headers(cls):
        if cls.cookie is None:
            headers, body = _call(
                "POST",
                "/api/v1/auth/login",
                {"username": USERNAME, "password": PASSWORD, "mode": "cookie"},
            )
            cls.cookie = "; ".join(c.split(";")[0] for c in headers.get_all("set-cookie"))
            cls.csrf = body["csrf_token"]
        return {"cookie": cls.cookie, "x-csrf-token": cls.csrf}


@schemathesis.auth()
class MintedToken:
    def get(self, case, context):
        _, body = _call(
            "POST",
            "/api/v1/tokens",
            {"name": "schemathesis", "scopes": ["read", "write", "admin"]},
            _Session.headers(),
        )
        return body["token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
