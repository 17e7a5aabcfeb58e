"""Image fetching over real HTTP: nothing leaves the allow-list, the API key stays on Label Studio.

Three loopback servers: a fake Label Studio (LABEL_STUDIO_URL, checks the token), an
allowed image host (FCANET_ALLOWED_IMAGE_HOSTS=localhost:<port>) and a forbidden host that
serves an image to anyone and records every hit: a test proves "no connection" by its
empty hit list.
"""

from __future__ import annotations

import datetime as dt

import pytest

from backend.app import create_app
from backend.config import BackendConfig
from backend.label_config import shipped_label_config
from backend_fixtures import TOKEN, FakePredictor, keypoint, png_bytes, sample_image
from live_servers import LiveBackend, RecordingServer
from model.corrections import open_store
from net_utils import free_port

PNG = png_bytes(sample_image())
IMAGE = "/data/upload/1/img.png"


def _image(hit):
    return 200, {"content-type": "image/png"}, PNG


def _label_studio_file(hit):
    if hit.headers.get("authorization") != f"Token {TOKEN}":
        return 401, {"content-type": "application/json"}, b'{"detail": "no token"}'
    return _image(hit)


def _redirect(location):
    return lambda hit: (302, {"location": location}, b"")


def _predict(image_ref):
    return {"tasks": [{"id": 7, "data": {"image": image_ref}}], "project": "1",
            "label_config": shipped_label_config(),
            "params": {"context": {"result": [keypoint(50, 50)]}}}


@pytest.fixture
def net(tmp_path):
    """(backend, label_studio, allowed, forbidden) servers, all on 127.0.0.1."""
    with RecordingServer() as forbidden, RecordingServer() as allowed, RecordingServer() as ls:
        forbidden.routes.update({p: _image for p in ("/a.png", "/x", "/data/upload/1/img.png")})
        ls.routes[IMAGE] = _label_studio_file
        allowed_host = f"localhost:{allowed.port}"
        config = BackendConfig(data_dir=str(tmp_path / "data"), label_studio_url=ls.url, label_studio_api_key=TOKEN,
                               allowed_image_hosts=(allowed_host,), watch_promoted_s=0, finetune_steps=0,
                               image_timeout_s=3)
        app = create_app(config, predictor=FakePredictor(), store=open_store(config.data_dir))
        with LiveBackend(app) as backend:
            yield backend, ls, allowed, forbidden


def _assert_refused_without_naming(r, *secrets):
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/json")
    detail = r.json()["detail"]
    assert "not allowed" in detail
    for secret in secrets:
        assert secret not in detail, f"the error names the target: {detail}"


def test_label_studio_paths_and_urls_never_reach_another_origin(net):
    backend, ls, allowed, forbidden = net
    f = forbidden.port
    hostile = [
        f"/http://127.0.0.1:{f}/a.png",               # a path that urljoin turns into an absolute URL
        f"/HTTP://127.0.0.1:{f}/a.png",               # the same with an upper-case scheme
        f"/\thttp://127.0.0.1:{f}/a.png",             # control character some parsers strip
        f"/ht\ttp://127.0.0.1:{f}/a.png",
        f"/ht\ntp://127.0.0.1:{f}/a.png",
        f"//127.0.0.1:{f}/a.png",                     # scheme-relative
        f"/\\127.0.0.1:{f}/a.png",                    # backslash as a slash
        f"/\\\\127.0.0.1:{f}/a.png",
        f"/data/upload/../../http://127.0.0.1:{f}/a.png",
        f"/data/upload/%2e%2e/%2e%2e/http:%2f%2f127.0.0.1:{f}/a.png",
        f"http://127.0.0.1:{f}/a.png",                # an absolute URL on no allowed origin
        f"HTTP://127.0.0.1:{f}/a.png",
        f"http://localhost:{f}/a.png",                # the allowed host on another port
        f"http://127.0.0.1:{ls.port}@127.0.0.1:{f}/a.png",   # userinfo that looks like Label Studio
        f"http://localhost:{allowed.port}@127.0.0.1:{f}/a.png",
        f"http://localhost:{allowed.port}\\@127.0.0.1:{f}/a.png",
        f"http://127.0.0.1:{f}\\@localhost:{allowed.port}/a.png",
        f"http://127.0.0.1:{f}/a.png#@localhost:{allowed.port}",
        f"https://127.0.0.1:{f}/a.png",
        f"ftp://127.0.0.1:{f}/a.png",
        f"http://ｌｏｃａｌｈｏｓｔ:{f}/a.png",         # IDNA (full-width) spelling
    ]
    for ref in hostile:
        r = backend.post("/predict", _predict(ref))
        assert not forbidden.hits, f"{ref!r} reached the forbidden host"
        if ref.startswith("/") and "\\" not in ref and "\t" not in ref and "\n" not in ref:
            # A Label Studio path: fetched from Label Studio itself (which has no such file) or refused.
            assert r.status_code in (400, 424), (ref, r.text)
        else:
            _assert_refused_without_naming(r, str(f), "127.0.0.1")
    # Label Studio paths and URLs still work, with the key.
    ls.hits.clear()
    for ref in (IMAGE, f"{ls.url}{IMAGE}", f"/data/upload/2/../1/img.png"):
        r = backend.post("/predict", _predict(ref))
        assert r.status_code == 200, (ref, r.text)
    assert all(hit.headers.get("authorization") == f"Token {TOKEN}" for hit in ls.hits)
    assert not forbidden.hits


def test_redirects_are_checked_before_following_them(net):
    backend, ls, allowed, forbidden = net
    f = forbidden.port
    allowed.routes.update({
        "/to-forbidden": _redirect(f"http://127.0.0.1:{f}/a.png"),
        "/to-scheme-relative": _redirect(f"//127.0.0.1:{f}/a.png"),
        "/to-userinfo": _redirect(f"http://localhost:{allowed.port}@127.0.0.1:{f}/a.png"),
        "/ok": _image,
        "/to-ok": _redirect("/ok"),
    })
    ls.routes["/data/upload/1/presigned.png"] = _redirect(f"http://127.0.0.1:{f}/x")
    for ref in (f"http://localhost:{allowed.port}/to-forbidden", f"http://localhost:{allowed.port}/to-scheme-relative",
                f"http://localhost:{allowed.port}/to-userinfo", "/data/upload/1/presigned.png"):
        r = backend.post("/predict", _predict(ref))
        assert not forbidden.hits, f"{ref} was followed to the forbidden host"
        assert r.status_code == 502 and r.headers["content-type"].startswith("application/json"), (ref, r.text)
        detail = r.json()["detail"]
        assert "not allowed" in detail and str(f) not in detail and "127.0.0.1" not in detail, detail
    assert backend.post("/predict", _predict(f"http://localhost:{allowed.port}/to-ok")).status_code == 200


def test_connection_errors_do_not_tell_closed_ports_from_missing_hosts(tmp_path):
    config = BackendConfig(data_dir=str(tmp_path / "data"), allowed_image_hosts=("localhost", "no-such-host.invalid"),
                           watch_promoted_s=0, finetune_steps=0, image_timeout_s=3)
    app = create_app(config, predictor=FakePredictor(), store=open_store(config.data_dir))
    with LiveBackend(app) as backend:
        closed = backend.post("/predict", _predict(f"http://localhost:{free_port()}/a.png"))
        missing = backend.post("/predict", _predict("http://no-such-host.invalid/a.png"))
    assert closed.status_code == missing.status_code == 502
    assert closed.json() == missing.json()
    assert "cannot fetch the image" in closed.json()["detail"]


# ----------------------------------------------------------------------------- the API key
def test_api_key_only_on_chains_that_stay_on_label_studio(net):
    backend, ls, allowed, forbidden = net
    # allowed host -> Label Studio: the request to Label Studio must come without the key
    allowed.routes["/to-ls"] = _redirect(f"{ls.url}{IMAGE}")
    r = backend.post("/predict", _predict(f"http://localhost:{allowed.port}/to-ls"))
    [hit] = [h for h in ls.hits if h.path == IMAGE]
    assert "authorization" not in hit.headers, "the key followed a chain that started on another host"
    assert r.status_code >= 400 and TOKEN not in r.text

    # Label Studio -> allowed host -> Label Studio: the chain left, so the last hop gets no key either
    ls.hits.clear()
    ls.routes["/data/upload/1/bounce.png"] = _redirect(f"http://localhost:{allowed.port}/back")
    allowed.routes["/back"] = _redirect(f"{ls.url}{IMAGE}")
    backend.post("/predict", _predict("/data/upload/1/bounce.png"))
    assert ls.hits[0].headers.get("authorization") == f"Token {TOKEN}"
    assert [h.path for h in ls.hits] == ["/data/upload/1/bounce.png", IMAGE]
    assert "authorization" not in ls.hits[1].headers
    assert all("authorization" not in h.headers for h in allowed.hits)

    # the key still goes where it belongs: a chain that stays on Label Studio
    ls.hits.clear()
    ls.routes["/data/upload/1/moved.png"] = _redirect(IMAGE)
    assert backend.post("/predict", _predict("/data/upload/1/moved.png")).status_code == 200
    assert [h.headers.get("authorization") for h in ls.hits] == [f"Token {TOKEN}"] * 2


def test_cookies_label_studio_sets_never_reach_another_host(tmp_path):
    """Cookies match a host name, not an origin: a session cookie from Label Studio must not go to
    an allowed image host on the same host name (another port), nor that host's cookies to Label Studio."""
    def with_cookie(name):
        return lambda hit: (200, {"content-type": "image/png", "set-cookie": f"{name}=secret-{name}; Path=/"}, PNG)

    with RecordingServer({IMAGE: with_cookie("sessionid")}) as ls, \
            RecordingServer({"/b.png": with_cookie("tracker")}) as other:
        config = BackendConfig(data_dir=str(tmp_path / "data"), label_studio_url=ls.url, label_studio_api_key=TOKEN,
                               allowed_image_hosts=(f"127.0.0.1:{other.port}",), watch_promoted_s=0,
                               finetune_steps=0, image_cache_items=1)
        app = create_app(config, predictor=FakePredictor(), store=open_store(config.data_dir))
        with LiveBackend(app) as backend:
            for ref in (IMAGE, f"http://127.0.0.1:{other.port}/b.png", IMAGE, f"http://127.0.0.1:{other.port}/b.png"):
                assert backend.post("/predict", _predict(ref)).status_code == 200, ref
    assert len(ls.hits) == 2 and len(other.hits) == 2  # a cache of one image: every fetch went out
    assert all("cookie" not in hit.headers for hit in ls.hits + other.hits), [h.headers for h in ls.hits + other.hits]
    assert all("authorization" not in hit.headers for hit in other.hits)


# ----------------------------------------------------------------------------- token refresh
def _refresh_token() -> str:
    import jwt

    exp = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    return jwt.encode({"token_type": "refresh", "exp": int(exp.timestamp())}, "a test signing key of 32 bytes or more", algorithm="HS256")


@pytest.mark.parametrize("reply", [
    (200, {"content-type": "text/html"}, b"<html>a proxy error page</html>"),
    (502, {"content-type": "text/plain"}, b"Bad Gateway"),
    (200, {"content-type": "application/json"}, b'{"unexpected": true}'),
])
def test_a_failing_token_refresh_is_a_502_with_json(tmp_path, reply):
    with RecordingServer({"/api/token/refresh/": reply, IMAGE: _image}) as ls:
        config = BackendConfig(data_dir=str(tmp_path / "data"), label_studio_url=ls.url,
                               label_studio_api_key=_refresh_token(), watch_promoted_s=0, finetune_steps=0)
        app = create_app(config, predictor=FakePredictor(), store=open_store(config.data_dir))
        with LiveBackend(app) as backend:
            r = backend.post("/predict", _predict(IMAGE))
            assert r.status_code == 502, r.text
            assert r.headers["content-type"].startswith("application/json") and "token" in r.json()["detail"]
            assert backend.post("/predict", _predict(IMAGE)).status_code == 502, "the server keeps serving"
        assert any(h.path == "/api/token/refresh/" for h in ls.hits)


def test_webhook_image_references_never_reach_another_origin(net):
    """The image of a stored annotation is fetched after the answer: the same rules apply."""
    import time

    import numpy as np
    from label_studio_sdk.converter import brush

    backend, ls, allowed, forbidden = net
    mask = np.zeros((60, 80), np.uint8)
    mask[10:30, 10:30] = 255
    for i, ref in enumerate((f"/http://127.0.0.1:{forbidden.port}/a.png", f"/ht\ttp://127.0.0.1:{forbidden.port}/a.png",
                             f"http://127.0.0.1:{forbidden.port}/a.png")):
        event = {"action": "ANNOTATION_CREATED", "project": {"id": 1, "label_config": shipped_label_config()},
                 "annotation": {"id": 100 + i, "completed_by": 1, "result": [
                     {"id": "b1", "from_name": "mask", "to_name": "image", "type": "brushlabels",
                      "original_width": 80, "original_height": 60,
                      "value": {"format": "rle", "rle": brush.mask2rle(mask), "brushlabels": ["Object"]}}]},
                 "task": {"id": 7, "data": {"image": ref}}}
        r = backend.post("/webhook", event)
        assert r.status_code == 200 and r.json()["status"] == "stored", r.text
    time.sleep(1.0)  # the deferred image fetches run after the answers
    assert not forbidden.hits
