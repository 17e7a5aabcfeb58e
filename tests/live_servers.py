"""Real loopback servers for tests that go over HTTP (helper module, not a test file).

LiveBackend serves the backend app with uvicorn in a thread; RecordingServer is a small
HTTP server (a fake Label Studio or image host) that records every request it receives, so
a test can prove that no connection reached it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from contextlib import contextmanager
from typing import Callable, Iterator

import httpx

from net_utils import free_port

#: A route answers (status, headers, body) for a request.
Route = Callable[["Hit"], tuple[int, dict[str, str], bytes]]


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


class RecordingServer:
    """HTTP on 127.0.0.1:<port>; `routes` maps a path (query included) to a Route or to
    (status, headers, body); unknown paths answer 404. Every request lands in `hits`."""

    def __init__(self, routes: dict[str, Route | tuple[int, dict[str, str], bytes]] | None = None):
        self.routes = dict(routes or {})
        self.hits: list[Hit] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                hit = Hit(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                server.hits.append(hit)
                route = server.routes.get(self.path)
                status, headers, body = (404, {}, b"not found") if route is None else \
                    route(hit) if callable(route) else route
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "RecordingServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class BackendServer:
    """An ASGI app (our backend) served by uvicorn in a thread on 127.0.0.1: `start()`/`stop()` or
    a `with` block; ready once GET /health answers 200 (health stays open under basic auth)."""

    def __init__(self, app, port: int | None = None):
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    def start(self, timeout: float = 60.0) -> "BackendServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the backend did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> "BackendServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def post(self, path: str, body: bytes | dict, timeout: float = 30) -> httpx.Response:
        if isinstance(body, dict):
            return httpx.post(self.url + path, json=body, timeout=timeout)
        return httpx.post(self.url + path, content=body, headers={"content-type": "application/json"},
                          timeout=timeout)


#: The name the HTTP tests use for it.
LiveBackend = BackendServer


@contextmanager
def serve(app) -> Iterator[str]:
    """Serve `app` for the duration of a `with` block; yields its base URL."""
    with BackendServer(app) as server:
        yield server.url
