"""Cost of the per-request safety checks on /predict and /webhook, in microseconds per call.

    python scripts/bench_request_checks.py [--calls 5000]
Prints JSON: plain json.loads vs the backend's checked parse (finite numbers, nesting depth)
of a Label Studio-style /predict body with 10 keypoints and of a webhook-sized 1M-value RLE
body, and the cost of resolving an image reference (Label Studio path, allowed-host URL).
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=5000)
    n = ap.parse_args().calls

    from backend.config import BackendConfig
    from backend.images import ImageFetcher
    from backend.json_body import parse_json_object
    from backend.label_config import shipped_label_config
    from backend_fixtures import keypoint

    def us(fn, calls=n):
        return round(timeit.timeit(fn, number=calls) / calls * 1e6, 1)

    predict = json.dumps({"tasks": [{"id": 7, "data": {"image": "/data/upload/1/abc.png"}}], "project": "1.17",
                          "label_config": shipped_label_config(),
                          "params": {"context": {"result": [keypoint(50, 50, kp_id=f"k{i}") for i in range(10)]}}}
                         ).encode()
    webhook = json.dumps({"annotation": {"result": [{"value": {"rle": list(range(256)) * 4000}}]}}).encode()
    fetcher = ImageFetcher(BackendConfig(label_studio_url="http://ls.test:8080", allowed_image_hosts=("img.example.com",)))
    print(json.dumps({
        "predict_body_bytes": len(predict),
        "predict_json_loads_us": us(lambda: json.loads(predict)),
        "predict_checked_parse_us": us(lambda: parse_json_object(predict)),
        "webhook_body_bytes": len(webhook),
        "webhook_json_loads_us": us(lambda: json.loads(webhook), 5),
        "webhook_checked_parse_us": us(lambda: parse_json_object(webhook), 5),
        "resolve_label_studio_path_us": us(lambda: fetcher.resolve("/data/upload/1/abc.png")),
        "resolve_allowed_url_us": us(lambda: fetcher.resolve("http://img.example.com/a.png")),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
