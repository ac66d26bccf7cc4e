"""Schemathesis hooks for scripts/schemathesis.sh: how the fuzzer authenticates.

The fuzzer may do anything an admin may, including to the admins themselves: revoke the
token it uses, log out with it, change an admin's password (which ends that admin's
sessions), disable or delete an admin. So two keeper admins hold web sessions the fuzzer
never sees, logged in from 127.0.0.2 (their own bucket in the login rate limit), and each
bearer token the fuzzer uses is minted through one of them. When a token stops working,
Schemathesis asks for a new one on the 401 and replays the request; when a keeper's
session has died, the other keeper restores it (password, enabled, admin; recreated if
deleted) and it logs in again.
"""

import http.client
import json
import os
import urllib.parse

import schemathesis

URL = urllib.parse.urlsplit(os.environ["MOSAIC_SCHEMATHESIS_URL"])
PASSWORD = os.environ["MOSAIC_SCHEMATHESIS_PASSWORD"]
KEEPERS = ("keeper-a", "keeper-b")


def _call(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=30, source_address=("127.0.0.2", 0))
    try:
        conn.request(
            method,
            path,
            body=None if body is None else json.dumps(body),
            headers={"content-type": "application/json", **(headers or {})},
        )
        response = conn.getresponse()
        data = response.read()
        return response.status, response.headers, json.loads(data) if data else None
    finally:
        conn.close()


_sessions = {}


def _login(user):
    status, headers, body = _call(
        "POST", "/api/v1/auth/login", {"username": user, "password": PASSWORD, "mode": "cookie"}
    )
    if status != 200:
        return None
    cookie = "; ".join(c.split(";")[0] for c in headers.get_all("set-cookie"))
    return {"cookie": cookie, "x-csrf-token": body["csrf_token"]}


def _session(user):
    """A working session of `user`, or None."""
    headers = _sessions.get(user)
    if headers is not None and _call("GET", "/api/v1/auth/me", headers=headers)[0] == 200:
        return headers
    _sessions[user] = headers = _login(user)
    return headers


def _restore(user, via):
    status, _, page = _call("GET", "/api/v1/users?limit=500", headers=via)
    ids = [u["id"] for u in (page or {}).get("items", []) if u["username"] == user] if status == 200 else []
    if ids:
        _call("PATCH", f"/api/v1/users/{ids[0]}", {"password": PASSWORD, "disabled": False, "is_admin": True}, via)
    else:
        _call("POST", "/api/v1/users", {"username": user, "password": PASSWORD, "is_admin": True}, via)
    _sessions.pop(user, None)


def _keeper():
    for user, other in (KEEPERS, KEEPERS[::-1]):
        headers = _session(user)
        if headers is None:
            continue
        if _session(other) is None:
            _restore(other, headers)
        # Restoring the other may not touch this one; check before handing it out.
        return _session(user) or _session(other)
    raise RuntimeError("both keeper admins lost their sessions")


@schemathesis.auth()
class MintedToken:
    def get(self, case, context):
        status, _, body = _call(
            "POST",
            "/api/v1/tokens",
            {"name": "schemathesis", "scopes": ["read", "write", "admin"]},
            _keeper(),
        )
        if status != 201:
            raise RuntimeError(f"minting a token answered {status}: {body}")
        return body["token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
