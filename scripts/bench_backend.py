"""/predict latency under concurrent clients: p50/p95 over all requests.

    python scripts/bench_backend.py [--clients 8] [--requests 5] [--tiny]
Starts the backend in-process (default model, or the tiny test network with --tiny) with a
local-files image, then runs the clients in threads, each posting Label Studio-style
keypoint contexts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()

    import httpx

    from backend.app import create_app
    from backend.config import BackendConfig
    from e2e.label_studio_server import BackendServer
    from e2e.scenes import ellipse_scene
    from model import Predictor

    work = Path(tempfile.mkdtemp(prefix="fcanet-bench-"))
    image, _ = ellipse_scene()
    Image.fromarray(image).save(work / "scene.png")
    # Serve the image from a tiny static server so the backend fetches it as from Label Studio.
    import http.server
    import functools

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(work))
    static = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=static.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{static.server_address[1]}"
    config = BackendConfig(data_dir=str(work / "data"), allowed_image_hosts=(host,), watch_promoted_s=0, finetune_steps=0)
    predictor = Predictor.for_tests() if args.tiny else Predictor.from_checkpoint()
    server = BackendServer(create_app(config, predictor=predictor)).start()
    h, w = image.shape[:2]

    def body(task_id: int, n_clicks: int) -> dict:
        pts = [(50.0, 50.0, True), (20.0, 20.0, False), (55.0, 45.0, True)][:n_clicks]
        ctx = [{"original_width": w, "original_height": h, "image_rotation": 0,
                "value": {"x": x, "y": y, "width": 0.5, "keypointlabels": ["Object"]}, "is_positive": pos,
                "id": f"k{i}", "from_name": "click", "to_name": "image", "type": "keypointlabels", "origin": "manual"}
               for i, (x, y, pos) in enumerate(pts)]
        return {"tasks": [{"id": task_id, "data": {"image": f"http://{host}/scene.png"}}], "project": "1.1",
                "label_config": (REPO / "backend" / "label_config.xml").read_text(), "params": {"context": {"result": ctx}}}

    latencies, failures = [], []
    lock = threading.Lock()

    def client(k: int) -> None:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            for r in range(args.requests):
                t = time.perf_counter()
                resp = c.post("/predict", json=body(k, 1 + r % 3))
                dt = time.perf_counter() - t
                with lock:
                    (latencies if resp.status_code == 200 and resp.json()["results"][0]["result"] else failures).append(dt)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    from model.evaluation.benchmark import latency_summary

    summary = latency_summary(latencies)
    print(json.dumps({"clients": args.clients, "requests": len(latencies) + len(failures), "failed": len(failures),
                      "p50_ms": summary.get("p50_ms"), "p95_ms": summary.get("p95_ms"),
                      "wall_s": round(wall, 1), "model": predictor.model_version}))
    server.stop()
    static.shutdown()
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
