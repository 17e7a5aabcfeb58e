"""Request body size limit, enforced while the body streams in.

`Content-Length` above the limit is refused before a byte of the body is read; a chunked
body (no `Content-Length`) is counted as its chunks arrive and refused as soon as the count
passes the limit, so the server never holds more than the limit plus one chunk. Either way
the client gets 413 with a JSON {"detail": ...}; the connection is then closed by the server
(the rest of the body is never read).
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger("fcanet.backend")


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.strip().isdigit():
                    return await self._refuse(send, 400, "Content-Length must be a whole number", scope)
                if int(value) > self.max_bytes:
                    return await self._refuse(send, 413, self._message(), scope)

        received = 0
        overflow = False
        started = False

        async def limited_receive():
            nonlocal received, overflow
            if overflow:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    overflow = True
                    raise _TooLarge()
            return message

        async def guarded_send(message):
            nonlocal started
            if overflow:
                return  # the 413 below is the answer, whatever the app tried to say
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # The app may wrap or re-raise the overflow in its own way; only ours is swallowed.
            if not overflow:
                raise
        if overflow and not started:
            await self._refuse(send, 413, self._message(), scope)

    def _message(self) -> str:
        return (f"the request body is larger than {self.max_bytes} bytes "
                f"(FCANET_MAX_BODY_BYTES / --max-body-bytes)")

    async def _refuse(self, send, status: int, detail: str, scope) -> None:
        log.warning("%s %s -> %d: %s", scope.get("method"), scope.get("path"), status, detail)
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
