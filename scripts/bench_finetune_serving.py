"""Does serving survive a fine-tune? Latency per click of the real `fcanet serve` process, idle
and while its fine-tuning job runs, and failed requests across the swap to the new model.

    python scripts/bench_finetune_serving.py --out docs/results/serving-during-finetune

For each mode (`limited`: the job at 1 torch thread and niceness +10, the backend's default;
`unlimited`: torch's default threads, niceness 0) it starts `fcanet serve` with the bundled model
on a data directory holding 16 horse corrections, then one labeler posts /predict requests one
after another (1 to 3 clicks each, on a horse image served as from Label Studio): `--idle`
requests first, then START_TRAINING and requests for as long as the job runs, then, once the
job has finished, requests until the answers carry the new model's version (a refused candidate
is promoted by hand with `fcanet models promote`, so that the swap is exercised either way).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from model.evaluation.benchmark import latency_summary  # noqa: E402  (after the sys.path line)

MODES = {"limited": {"FCANET_FINETUNE_THREADS": "1", "FCANET_FINETUNE_NICE": "10"},
         "unlimited": {"FCANET_FINETUNE_THREADS": "0", "FCANET_FINETUNE_NICE": "0"}}


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the object pixel farthest from the background: where a labeler clicks first."""
    import cv2

    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x), float(y)


def fill_store(data: Path, horses, count: int) -> None:
    from model import Click
    from model.corrections import open_store

    store = open_store(data)
    for s in horses[:count]:
        x, y = interior_point(s.gt)
        store.add(source="label_studio", image=s.load_image(), mask=s.gt, clicks=[Click(x, y)],
                  project="1", author="bench")


def run_mode(mode: str, args, image_url: str, image_hw, click: tuple[float, float], horses, host: str) -> dict:
    import httpx

    from backend.label_config import shipped_label_config
    from tests.net_utils import free_port

    work = Path(tempfile.mkdtemp(prefix=f"fcanet-serving-{mode}-"))
    data = work / "data"
    fill_store(data, horses, args.corrections)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), **MODES[mode]}
    log = open(work / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "model.cli", "serve", "--port", str(port), "--data-dir", str(data),
         "--allowed-image-hosts", host, "--finetune-steps", str(args.steps), "--watch-promoted", "1",
         "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    h, w = image_hw
    x0, y0 = click

    def body(n_clicks: int) -> dict:
        pts = [(x0, y0, True), (x0 + 0.2 * w, y0, True), (5.0, 5.0, False)][:n_clicks]
        ctx = [{"original_width": w, "original_height": h, "image_rotation": 0,
                "value": {"x": 100 * px / w, "y": 100 * py / h, "width": 0.5, "keypointlabels": ["Object"]},
                "is_positive": pos, "id": f"k{i}", "from_name": "click", "to_name": "image",
                "type": "keypointlabels", "origin": "manual"} for i, (px, py, pos) in enumerate(pts)]
        return {"tasks": [{"id": 1, "data": {"image": image_url}}], "project": "1.1",
                "label_config": shipped_label_config(), "params": {"context": {"result": ctx}}}

    result: dict = {"mode": mode, "env": MODES[mode], "steps": args.steps}
    failures: list[str] = []
    try:
        with httpx.Client(base_url=url, timeout=120) as c:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if c.get("/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("fcanet serve did not start: " + (work / "serve.log").read_text()[-2000:])
                time.sleep(0.5)
            k = 0

            def click_once() -> tuple[float, str | None]:
                nonlocal k
                k += 1
                t = time.perf_counter()
                try:
                    r = c.post("/predict", json=body(1 + k % 3))
                    ok = r.status_code == 200 and r.json()["results"][0]["result"]
                    version = r.json()["results"][0]["model_version"] if ok else None
                    if not ok:
                        failures.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    version = None
                return time.perf_counter() - t, version

            for _ in range(3):  # warm-up: the first image fetch and the first forward pass
                click_once()
            idle = [click_once()[0] for _ in range(args.idle)]
            served = c.get("/health").json()["model_version"]
            r = c.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 1}})
            assert r.status_code == 200, r.text
            during: list[float] = []
            job_start = time.monotonic()
            while True:
                state = c.get("/health").json()["training"]
                if state.get("state") not in ("running", None, "requested"):
                    break
                during.append(click_once()[0])
            job_seconds = time.monotonic() - job_start
            if state.get("state") != "succeeded":
                raise RuntimeError(f"the fine-tuning job did not succeed: {state}")
            if not state.get("promoted"):
                subprocess.run([sys.executable, "-m", "model.cli", "models", "promote", state["version"],
                                "--store", str(data)], check=True, env=env, capture_output=True)
            swap, versions = [], []
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                dt, version = click_once()
                swap.append(dt)
                versions.append(version)
                if version == state["version"] and versions.count(version) >= 5:
                    break
        result.update(idle=latency_summary(idle), during_finetune=latency_summary(during), after_swap=latency_summary(swap),
                      job_seconds=round(job_seconds, 1), job=state, served_before=served,
                      served_after=versions[-1] if versions else None,
                      failed_requests=len(failures), failures=failures[:5])
        if result["idle"].get("p95_ms") and result["during_finetune"].get("p95_ms"):
            result["p95_ratio"] = round(result["during_finetune"]["p95_ms"] / result["idle"]["p95_ms"], 2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--horses", default=str(REPO.parent / "shared/datasets/WeizmannHorse"))
    ap.add_argument("--modes", default="limited,unlimited")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--idle", type=int, default=40, help="requests before the job starts")
    ap.add_argument("--corrections", type=int, default=16)
    ap.add_argument("--out", default="docs/results/serving-during-finetune")
    args = ap.parse_args()

    from PIL import Image

    from model.evaluation.datasets import load_dataset

    horses = load_dataset("davis", args.horses)[1::2]  # the half the horse demonstration corrects on
    probe = horses[-1]  # the labeler's image: not one of the stored corrections
    static_root = Path(tempfile.mkdtemp(prefix="fcanet-serving-images-"))
    image = probe.load_image()
    Image.fromarray(image).save(static_root / "horse.png")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(static_root))
    handler.log_message = lambda *a, **k: None
    static = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=static.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{static.server_address[1]}"
    report = {"command": "python " + " ".join(sys.argv), "cpu_count": os.cpu_count(),
              "load_average_at_start": os.getloadavg(), "modes": {}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        report["modes"][mode] = run_mode(mode, args, f"http://{host}/horse.png", image.shape[:2],
                                         interior_point(probe.gt), horses, host)
        report["load_average_at_end"] = os.getloadavg()
        (out / "report.json").write_text(json.dumps(report, indent=2))
        print(json.dumps(report["modes"][mode], indent=1), flush=True)
    static.shutdown()
    lines = ["| job | idle p50 / p95 ms | during fine-tune p50 / p95 ms | p95 ratio | failed requests | "
             "swap |", "| --- | --- | --- | --- | --- | --- |"]
    for mode, r in report["modes"].items():
        lines.append(f"| {mode} ({', '.join(f'{k}={v}' for k, v in r['env'].items())}) | "
                     f"{r['idle']['p50_ms']} / {r['idle']['p95_ms']} | {r['during_finetune'].get('p50_ms')} / "
                     f"{r['during_finetune'].get('p95_ms')} ({r['during_finetune']['requests']} requests) | "
                     f"{r.get('p95_ratio')} | {r['failed_requests']} | {r['served_before']} -> {r['served_after']} |")
    (out / "report.md").write_text(f"Command: `{report['command']}`\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
