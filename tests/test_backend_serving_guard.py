"""Serving guards over real HTTP (uvicorn on a loopback port): basic auth on every route of the
backend and of the mounted Gradio demo, the body size limit on chunked bodies, and the
bounded prediction pool under concurrent requests."""

from __future__ import annotations

import base64
import re
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from backend.app import create_app
from backend.config import BackendConfig
from backend_fixtures import FakePredictor, keypoint, png_bytes, sample_image
from backend.images import ImageFetcher
from backend.label_config import shipped_label_config
from model.corrections import open_store
from tests.live_servers import BackendServer

USER, PASSWORD = "labeler", "s3cret-pass"
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _routes(routes, prefix=""):
    """(path template, methods) of every route, walking mounts and included routers."""
    for r in routes:
        if hasattr(r, "original_router"):  # FastAPI's included router (Gradio's /gradio_api/*)
            yield from _routes(r.original_router.routes, prefix + r.include_context.prefix)
        elif hasattr(r, "routes"):  # a Mount (the demo at /demo)
            yield from _routes(r.routes, prefix + r.path)
        else:
            yield prefix + r.path, sorted(getattr(r, "methods", None) or ["WEBSOCKET"])


class FilePredictor(FakePredictor):
    """FakePredictor that also takes an image path, as the demo's headless API passes one."""

    def predict(self, image, clicks, *, sis: bool = True, refine: bool = True):
        if not isinstance(image, np.ndarray):
            image = np.asarray(Image.open(image).convert("RGB"))
        return super().predict(image, clicks, sis=sis, refine=refine)


def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", template)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    work = tmp_path_factory.mktemp("auth")
    config = BackendConfig(data_dir=str(work / "data"), basic_auth_user=USER, basic_auth_pass=PASSWORD,
                           with_demo=True, watch_promoted_s=0, finetune_steps=0)
    store = open_store(config.data_dir)
    app = create_app(config, predictor=FilePredictor(), store=store)
    server = BackendServer(app).start()
    yield server, app, store
    server.stop()


def test_every_route_but_health_needs_credentials_including_the_demo(demo_server):
    server, app, _ = demo_server
    routes = list(_routes(app.routes))
    paths = {p for p, _ in routes}
    # the walk must really reach Gradio's API, queue, upload and file routes
    for needed in ("/demo/config", "/demo/gradio_api/queue/join", "/demo/gradio_api/queue/data",
                   "/demo/gradio_api/upload", "/demo/gradio_api/file={path_or_url:path}",
                   "/demo/gradio_api/call/{api_name}", "/demo/gradio_api/info", "/predict", "/webhook"):
        assert needed in paths
    assert not any(m == ["WEBSOCKET"] for _, m in routes)  # none to test with a handshake
    open_ones = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for template, methods in routes:
            for method in methods:
                r = client.request(method, _concrete(template), json={} if method == "POST" else None)
                if r.status_code != 401:
                    open_ones.append((method, template, r.status_code))
                else:
                    assert r.headers["www-authenticate"].startswith("Basic ")
                    if method != "HEAD":
                        assert r.json() == {"detail": "authentication required"}
                wrong = client.request(method, _concrete(template), auth=(USER, "wrong"))
                if (method, template) != ("GET", "/health"):
                    assert wrong.status_code == 401, (method, template)
    assert open_ones == [("GET", "/health", 200)]


def test_demo_answers_with_credentials_and_segments(demo_server, tmp_path):
    from gradio_client import Client, handle_file

    server, *_ = demo_server
    page = httpx.get(f"{server.url}/demo/", timeout=30)
    assert page.status_code == 401 and 'realm="fcanet"' in page.headers["www-authenticate"]  # browser prompt
    assert httpx.get(f"{server.url}/demo/", headers={"Authorization": AUTH}, timeout=30).status_code == 200
    assert httpx.get(f"{server.url}/demo/config", headers={"Authorization": AUTH}, timeout=30).status_code == 200
    with pytest.raises(Exception):
        Client(f"{server.url}/demo/", verbose=False)
    Image.fromarray(sample_image()).save(tmp_path / "in.png")
    client = Client(f"{server.url}/demo/", headers={"Authorization": AUTH}, verbose=False)
    mask = np.asarray(Image.open(client.predict(handle_file(str(tmp_path / "in.png")), [[40, 30, True]],
                                                api_name="/segment")))
    assert mask.shape == (60, 80) and mask[30, 40] == 255 and mask[0, 0] == 0


def test_save_correction_is_unreachable_without_credentials(demo_server):
    server, _, store = demo_server
    config = httpx.get(f"{server.url}/demo/config", headers={"Authorization": AUTH}, timeout=30).json()
    saved = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "saved")
    fn_index = next(i for i, d in enumerate(config["dependencies"]) if saved in d["outputs"])
    join = {"data": [None], "fn_index": fn_index, "session_hash": "attacker1", "event_data": None,
            "trigger_id": None}
    before = store.count()
    r = httpx.post(f"{server.url}/demo/gradio_api/queue/join", json=join, timeout=30)
    assert r.status_code == 401
    r = httpx.get(f"{server.url}/demo/gradio_api/queue/data", params={"session_hash": "attacker1"}, timeout=30)
    assert r.status_code == 401
    assert store.count() == before
    # the same call with credentials reaches the queue
    r = httpx.post(f"{server.url}/demo/gradio_api/queue/join", json=join, headers={"Authorization": AUTH},
                   timeout=30)
    assert r.status_code == 200 and "event_id" in r.json()


# ------------------------------------------------------------------------- body size while streaming
def test_chunked_body_past_the_limit_is_refused_while_streaming(tmp_path):
    limit = 64 * 1024
    config = BackendConfig(data_dir=str(tmp_path / "data"), watch_promoted_s=0, finetune_steps=0,
                           max_body_bytes=limit)
    server = BackendServer(create_app(config, predictor=FakePredictor(), store=open_store(config.data_dir))).start()
    chunk = b"x" * 16384
    sent, reply = 0, b""
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            # Offer 32 MB; a server that buffers the whole body never answers before the end.
            while sent < 32 * 1024 * 1024:
                readable, _, _ = select.select([sock], [], [], 0.02 if sent > limit else 0)
                if readable:
                    reply = sock.recv(65536)
                    break
                try:
                    sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                except OSError:  # the server closed the connection after answering
                    break
                sent += len(chunk)
            sock.settimeout(10)
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                more = sock.recv(65536)
                if not more:
                    break
                reply += more
    finally:
        server.stop()
    assert reply.startswith(b"HTTP/1.1 413"), (sent, reply[:200])
    assert b'"detail"' in reply and b"larger than 65536 bytes" in reply
    assert sent < 4 * 1024 * 1024  # refused long before the body ended


def test_declared_length_past_the_limit_is_refused_unread(tmp_path):
    config = BackendConfig(data_dir=str(tmp_path / "data"), watch_promoted_s=0, finetune_steps=0,
                           max_body_bytes=1000)
    server = BackendServer(create_app(config, predictor=FakePredictor(), store=open_store(config.data_dir))).start()
    try:
        r = httpx.post(f"{server.url}/predict", content=b"{" + b" " * 5000 + b"}", timeout=10)
        assert r.status_code == 413 and "larger than 1000 bytes" in r.json()["detail"]
        r = httpx.post(f"{server.url}/predict", content=b"{}", timeout=10)  # small bodies still pass
        assert r.status_code == 400 and "tasks" in r.json()["detail"]
    finally:
        server.stop()


# ------------------------------------------------------------------------- bounded prediction pool
class GatedPredictor(FakePredictor):
    """Blocks every prediction until `gate` opens; `entered` counts predictions started."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)

    def predict(self, image, clicks, *, sis: bool = True, refine: bool = True):
        self.entered.release()
        assert self.gate.wait(60), "the test never opened the gate"
        return super().predict(image, clicks, sis=sis, refine=refine)


def test_predictions_past_workers_and_queue_get_503_with_retry_after(tmp_path):
    host = "img.test"
    image = png_bytes(sample_image())
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=image,
                                                                   headers={"content-type": "image/png"}))
    config = BackendConfig(data_dir=str(tmp_path / "data"), allowed_image_hosts=(host,), watch_promoted_s=0,
                           finetune_steps=0, predict_workers=1, predict_queue=1)
    predictor = GatedPredictor()
    app = create_app(config, predictor=predictor, store=open_store(config.data_dir),
                     fetcher=ImageFetcher(config, transport=transport))
    server = BackendServer(app).start()

    def body(task_id: int) -> dict:
        return {"tasks": [{"id": task_id, "data": {"image": f"http://{host}/a{task_id}.png"}}], "project": "1.1",
                "label_config": shipped_label_config(),
                "params": {"context": {"result": [keypoint(50, 50, kp_id=f"k{task_id}")]}}}

    results: dict[int, httpx.Response] = {}

    def post(task_id: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            results[task_id] = c.post("/predict", json=body(task_id))

    threads = []
    try:
        # 1 runs (blocked inside the predictor), 2 waits in the queue
        threads.append(threading.Thread(target=post, args=(1,)))
        threads[-1].start()
        assert predictor.entered.acquire(timeout=30)
        threads.append(threading.Thread(target=post, args=(2,)))
        threads[-1].start()
        deadline = time.monotonic() + 30
        while app.state.pool.in_flight < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        # 3..6 arrive together while both slots are taken: each is refused at once
        late = [threading.Thread(target=post, args=(k,)) for k in range(3, 7)]
        for t in late:
            t.start()
        for t in late:
            t.join(timeout=20)
        for k in range(3, 7):
            r = results.get(k)
            assert r is not None, f"request {k} was not answered while the pool was full"
            assert r.status_code == 503, r.text
            assert int(r.headers["retry-after"]) >= 1
            assert "busy" in r.json()["detail"]
    finally:
        predictor.gate.set()
        for t in threads:
            t.join(timeout=30)
        server.stop()
    assert results[1].status_code == 200 and results[2].status_code == 200
    assert results[1].json()["results"][0]["result"]
    assert app.state.pool.in_flight == 0


def test_images_fetched_after_webhooks_share_the_worker_bound(tmp_path):
    """A webhook whose image is not cached answers at once and fetches the image afterwards; many
    such webhooks must not download and decode their images all at once (each may be 100
    megapixels): at most FCANET_PREDICT_WORKERS fetches run together, the others wait."""
    from label_studio_sdk.converter import brush

    from tests.live_servers import RecordingServer

    lock, active, peak = threading.Lock(), [0], [0]
    image = png_bytes(sample_image())

    def slow_image(hit):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1
        return 200, {"content-type": "image/png"}, image

    lanes, workers = 8, 2
    mask = np.zeros((60, 80), np.uint8)
    mask[10:30, 10:30] = 255
    with RecordingServer({f"/i{n}.png": slow_image for n in range(lanes)}) as host:
        config = BackendConfig(data_dir=str(tmp_path / "data"), allowed_image_hosts=(f"127.0.0.1:{host.port}",),
                               watch_promoted_s=0, finetune_steps=0, predict_workers=workers)
        store = open_store(config.data_dir)
        server = BackendServer(create_app(config, predictor=FakePredictor(), store=store)).start()
        try:
            def send(n):
                event = {"action": "ANNOTATION_CREATED", "project": {"id": 1, "label_config": shipped_label_config()},
                         "annotation": {"id": 300 + n, "completed_by": 1, "result": [
                             {"id": f"b{n}", "from_name": "mask", "to_name": "image", "type": "brushlabels",
                              "original_width": 80, "original_height": 60,
                              "value": {"format": "rle", "rle": brush.mask2rle(mask), "brushlabels": ["Object"]}}]},
                         "task": {"id": n, "data": {"image": f"http://127.0.0.1:{host.port}/i{n}.png"}}}
                return httpx.post(f"{server.url}/webhook", json=event, timeout=30)

            with ThreadPoolExecutor(lanes) as pool:
                answers = list(pool.map(send, range(lanes)))
            assert all(r.status_code == 200 and r.json()["image"] == "pending" for r in answers), answers
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(r.image_path is None for r in store.list()):
                time.sleep(0.05)
        finally:
            server.stop()
    assert store.count() == lanes and all(r.image_path for r in store.list()), "every image is attached in the end"
    assert len(host.hits) == lanes
    assert peak[0] <= workers, f"{peak[0]} image fetches ran at once with {workers} workers"


# ------------------------------------------------------------------------- secrets in config and compose
def test_basic_auth_variables_present_but_empty_are_refused():
    from backend.config import ConfigError

    for env in ({"BASIC_AUTH_USER": "", "BASIC_AUTH_PASS": ""}, {"BASIC_AUTH_USER": "u", "BASIC_AUTH_PASS": " "},
                {"BASIC_AUTH_PASS": ""}):
        with pytest.raises(ConfigError, match="empty"):
            BackendConfig.from_env(env)
    assert BackendConfig.from_env({}).basic_auth_user is None  # unset: no auth, deliberately
    assert BackendConfig.from_env({"BASIC_AUTH_USER": "u", "BASIC_AUTH_PASS": "p"}).basic_auth_pass == "p"


def test_compose_ships_no_default_secret():
    import yaml

    from tests.e2e.label_studio_server import REPO

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    secrets_seen = []
    for service in compose["services"].values():
        for name, value in (service.get("environment") or {}).items():
            if re.search(r"PASS|TOKEN|API_KEY", name):
                secrets_seen.append(name)
                # ${VAR:?message}: compose refuses to start when VAR is unset or empty
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), (name, value)
    assert {"BASIC_AUTH_USER", "BASIC_AUTH_PASS"} <= set(compose["services"]["fcanet"]["environment"])
    assert {"LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN", "LABEL_STUDIO_API_KEY"} <= set(secrets_seen)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert not re.search(r"(BASIC_AUTH_PASS|API_KEY|TOKEN|PASSWORD)\s*=", dockerfile)


# ------------------------------------------------------------------------- unrefined answers under load
def _queue_behind_a_blocked_prediction(tmp_path, fast_when_waiting: int):
    """Worker 1 of 1 blocked on request 1, requests 2 and 3 queued behind it; then the gate opens.
    Returns the predictor's refine flags in the order the predictions started, and /health."""
    host = "img.test"
    image = png_bytes(sample_image())
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=image,
                                                                   headers={"content-type": "image/png"}))
    config = BackendConfig(data_dir=str(tmp_path / "data"), allowed_image_hosts=(host,), watch_promoted_s=0,
                           finetune_steps=0, predict_workers=1, predict_queue=4, fast_when_waiting=fast_when_waiting)
    predictor = GatedPredictor()
    app = create_app(config, predictor=predictor, store=open_store(config.data_dir),
                     fetcher=ImageFetcher(config, transport=transport))
    server = BackendServer(app).start()
    results: dict[int, httpx.Response] = {}

    def post(task_id: int) -> None:
        body = {"tasks": [{"id": task_id, "data": {"image": f"http://{host}/a{task_id}.png"}}], "project": "1.1",
                "label_config": shipped_label_config(),
                "params": {"context": {"result": [keypoint(50, 50, kp_id=f"k{task_id}")]}}}
        with httpx.Client(base_url=server.url, timeout=60) as c:
            results[task_id] = c.post("/predict", json=body)

    threads = [threading.Thread(target=post, args=(1,))]
    try:
        threads[0].start()
        assert predictor.entered.acquire(timeout=30)
        for k in (2, 3):
            threads.append(threading.Thread(target=post, args=(k,)))
            threads[-1].start()
        deadline = time.monotonic() + 30
        while app.state.pool.waiting < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.state.pool.waiting == 2
        predictor.gate.set()
        for t in threads:
            t.join(timeout=30)
        with httpx.Client(base_url=server.url, timeout=10) as c:
            health = c.get("/health").json()
    finally:
        predictor.gate.set()
        server.stop()
    assert all(results[k].status_code == 200 and results[k].json()["results"][0]["result"] for k in (1, 2, 3))
    # Each answer says whether it was refined; which request got the fast one depends on start order.
    answered = sorted(results[k].json()["results"][0]["refined"] for k in (1, 2, 3))
    assert answered == sorted(predictor.refines)
    return predictor.refines, health


def test_a_prediction_with_others_waiting_behind_it_skips_the_graph_cut(tmp_path):
    refines, health = _queue_behind_a_blocked_prediction(tmp_path, fast_when_waiting=1)
    # 1 started alone (refined); the next to start had one more waiting behind it (fast); the
    # last had nobody behind it (refined).
    assert refines == [True, False, True]
    assert health["predictions"] == {"running_or_waiting": 0, "unrefined_under_load": 1}


def test_fast_answers_can_be_turned_off(tmp_path):
    refines, health = _queue_behind_a_blocked_prediction(tmp_path, fast_when_waiting=0)
    assert refines == [True, True, True]
    assert health["predictions"]["unrefined_under_load"] == 0
