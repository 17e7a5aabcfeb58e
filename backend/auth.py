"""HTTP basic auth in front of everything the server answers, the mounted Gradio demo included.

A pure ASGI middleware, so it sees every HTTP request and WebSocket handshake of the app and
of anything mounted in it (Gradio's /demo/config, /demo/gradio_api/* queue, SSE, upload and
file routes), before any body is read. Only `OPEN_PATHS` answer without credentials.
A refusal is 401 with `WWW-Authenticate: Basic`, so a browser asks once and then sends the
credentials with the Gradio page's own requests.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets

log = logging.getLogger("fcanet.backend")

#: Liveness probes (Docker HEALTHCHECK, load balancers) call these without credentials.
OPEN_PATHS = frozenset({"/health"})
REALM = "fcanet"


def credentials_ok(header: str | None, user: str, password: str) -> bool:
    """True when an `Authorization: Basic ...` header carries exactly `user:password`."""
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        got_user, sep, got_pass = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    # Both comparisons always run, so timing does not tell which part was wrong.
    user_ok = secrets.compare_digest(got_user.encode(), user.encode())
    pass_ok = secrets.compare_digest(got_pass.encode(), password.encode())
    return bool(sep) and user_ok and pass_ok


class BasicAuthMiddleware:
    """Refuses every request without the right credentials, except `OPEN_PATHS` (GET/HEAD)."""

    def __init__(self, app, user: str, password: str, open_paths=OPEN_PATHS):
        if not user or not password:
            raise ValueError("basic auth needs a non-empty user and password")
        self.app, self.user, self.password, self.open_paths = app, user, password, frozenset(open_paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["path"] in self.open_paths and scope["method"] in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        header = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        if credentials_ok(header, self.user, self.password):
            return await self.app(scope, receive, send)
        log.info("%s %s -> 401 (no valid credentials)", scope.get("method", "WS"), scope["path"])
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"detail": "authentication required"}).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode())]})
        await send({"type": "http.response.body", "body": body})
