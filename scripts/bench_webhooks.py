"""Webhook (ANNOTATION_UPDATED) latency under concurrent clients: p50/p95 and throughput.

    python scripts/bench_webhooks.py [--clients 8] [--requests 25] [--store DIR|postgresql://... --files-dir DIR]
Starts the backend in-process with uvicorn on a loopback port (fake predictor, a fake Label
Studio for the image) and a fresh store (a tmp SQLite store unless --store is given). Each
client updates its own annotation, alternating between two masks, so every request also
replaces a mask and cleans up the one it stopped using.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=25, help="webhooks per client")
    ap.add_argument("--store", help="a store directory or postgresql:// URL (default: a tmp SQLite store)")
    ap.add_argument("--files-dir", help="files folder for a PostgreSQL store")
    args = ap.parse_args()

    import httpx
    from label_studio_sdk.converter import brush

    from backend.app import create_app
    from backend.config import BackendConfig
    from backend.images import ImageFetcher
    from backend.label_config import shipped_label_config
    from backend_fixtures import LS_URL, TOKEN, FakeLabelStudio, FakePredictor, png_bytes, sample_image
    from live_servers import serve
    from model.corrections import open_store

    tmp = Path(tempfile.mkdtemp(prefix="fcanet-bench-webhooks-"))
    store = open_store(args.store or tmp / "data", files_dir=args.files_dir)
    config = BackendConfig(data_dir=str(tmp / "backend"), label_studio_url=LS_URL, label_studio_api_key=TOKEN,
                           watch_promoted_s=0, finetune_steps=0)
    image_path = "/data/upload/1/bench.png"
    ls = FakeLabelStudio({image_path: png_bytes(sample_image())})
    app = create_app(config, predictor=FakePredictor(), store=store, fetcher=ImageFetcher(config, transport=ls.transport))

    def event(annotation_id: int, mask: np.ndarray) -> dict:
        result = [{"id": f"b{annotation_id}", "from_name": "mask", "to_name": "image", "type": "brushlabels",
                   "original_width": 80, "original_height": 60, "image_rotation": 0,
                   "value": {"format": "rle", "rle": brush.mask2rle(mask.astype(np.uint8) * 255),
                             "brushlabels": ["Object"]}}]
        return {"action": "ANNOTATION_UPDATED", "project": {"id": 1, "label_config": shipped_label_config()},
                "annotation": {"id": annotation_id, "result": result, "task": annotation_id, "completed_by": 1},
                "task": {"id": annotation_id, "data": {"image": image_path}, "project": 1}}

    masks = []
    for seed in range(2 * args.clients):
        m = np.random.default_rng(seed).random((60, 80)) < 0.3
        m[30, 40] = True
        masks.append(m)
    latencies: list[float] = []
    lock = threading.Lock()
    with serve(app) as url, httpx.Client(base_url=url, timeout=60,
                                         limits=httpx.Limits(max_connections=args.clients)) as client:
        def run(c: int) -> None:
            for i in range(args.requests):
                body = event(c + 1, masks[2 * c + i % 2])
                start = time.perf_counter()
                r = client.post("/webhook", json=body)
                elapsed = time.perf_counter() - start
                if r.status_code != 200:
                    raise SystemExit(f"webhook answered {r.status_code}: {r.text}")
                with lock:
                    latencies.append(elapsed)

        threads = [threading.Thread(target=run, args=(c,)) for c in range(args.clients)]
        wall = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - wall
    ms = np.array(latencies) * 1000
    print(f"{store.kind} store, {args.clients} clients x {args.requests} webhooks: "
          f"p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, "
          f"{len(ms) / wall:.1f} webhooks/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
