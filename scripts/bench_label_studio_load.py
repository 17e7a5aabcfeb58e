"""Latency per click through a real Label Studio with several labelers clicking at once.

    python scripts/bench_label_studio_load.py --labelers 1,8 --out docs/results/label-studio-load

Starts Label Studio 1.23.2 (the e2e harness, `tests/e2e/label_studio_server.py`; LS_VENV names
its environment) and the real `fcanet serve` process beside it, connects the backend to a project
as an interactive ML backend, and imports one photograph per labeler (scikit-image's photos at
640x480). Each labeler then does what Label Studio's editor does on a smart click: POST
/api/ml/{id}/interactive-annotating with the task and every keypoint so far, up to --clicks
clicks on its photo, waiting --think-s seconds (jittered +-50 %) between a mask and the next
click. All labelers start together. The click sequences are the robot user's, computed before the
load, so nothing but Label Studio and the backend runs during it. One row per labeler count, the
first (1 labeler) being the baseline of the ratios; a failure is any answer that is not a 200 with
a brush result.

With --finetune-steps N, a last phase asks whether serving survives the learning loop: the first
labelers' masks are submitted as annotations through Label Studio (its webhooks store them in the
backend as corrections), START_TRAINING starts the backend's own fine-tuning job (N steps, its
default threads and niceness), and one labeler keeps clicking, on photos it has not clicked
before, until the job has ended and the backend serves its result (a refused candidate is promoted
by hand so that the swap happens either way). The report compares that labeler's p95 during the
job with the idle 1-labeler row and counts failed requests before, during and across the swap.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
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

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "coins", "camera")


def photo(i: int, width: int = 640, height: int = 480) -> tuple[np.ndarray, np.ndarray]:
    """Photograph i (cycling through PHOTOS, mirrored on every second lap so no two labelers share
    an image) and an ellipse for the robot to click on."""
    import cv2
    from skimage import data

    name = PHOTOS[i % len(PHOTOS)]
    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    img = cv2.resize(np.ascontiguousarray(img[..., :3]), (width, height), interpolation=cv2.INTER_AREA)
    if (i // len(PHOTOS)) % 2:
        img = np.ascontiguousarray(img[:, ::-1])
    yy, xx = np.mgrid[:height, :width]
    cy, cx = height * (0.4 + 0.05 * (i % 3)), width * (0.45 + 0.05 * (i % 2))
    mask = ((yy - cy) / (height * 0.28)) ** 2 + ((xx - cx) / (width * 0.2)) ** 2 <= 1
    return img, mask


def robot_sequence(predictor, image, gt, clicks: int):
    from model.robot_user import first_click, next_click

    seq = [first_click(gt)]
    while len(seq) < clicks:
        mask = predictor.predict(image, seq).mask
        nxt = next_click(mask, gt, clicked=seq)
        seq.append(nxt if nxt is not None else seq[-1])
    return seq


def keypoints(seq, w: int, h: int) -> list[dict]:
    return [{"original_width": w, "original_height": h, "image_rotation": 0,
             "value": {"x": 100 * c.x / w, "y": 100 * c.y / h, "width": 0.5, "keypointlabels": ["Object"]},
             "is_positive": c.positive, "id": f"k{i}", "from_name": "click", "to_name": "image",
             "type": "keypointlabels", "origin": "manual"} for i, c in enumerate(seq)]


def start_backend(ls, work: Path, args) -> tuple[subprocess.Popen, str]:
    import httpx

    from net_utils import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "LABEL_STUDIO_URL": ls.url, "LABEL_STUDIO_API_KEY": ls.token}
    log = open(work / "serve.log", "wb")
    cmd = [sys.executable, "-m", "model.cli", "serve", "--port", str(port), "--data-dir", str(work / "data"),
           "--finetune-steps", str(args.finetune_steps), "--watch-promoted", "1", "--log-level", "warning"]
    if args.mode:
        cmd += ["--mode", args.mode]
    if args.fast_when_waiting is not None:
        cmd += ["--fast-when-waiting", str(args.fast_when_waiting)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise RuntimeError("fcanet serve did not start: " + (work / "serve.log").read_text()[-2000:])


def _unrefined(backend_url: str) -> int:
    """Answers the backend gave without the graph cut because others waited (its /health)."""
    import httpx

    return int(httpx.get(f"{backend_url}/health", timeout=10).json()["predictions"]["unrefined_under_load"])


def run_labelers(ls, ml_id: int, jobs: list[tuple[int, list[dict]]], think_s: float, seed: int) -> dict:
    """jobs: one (task id, keypoints) per labeler, all started together."""
    import httpx

    times: list[float] = []
    failures: list[str] = []
    unrefined = [0]  # answers that said "refined": false, as Label Studio passed them on
    lock = threading.Lock()
    barrier = threading.Barrier(len(jobs))

    def labeler(k: int, task_id: int, points: list[dict]) -> None:
        rng = random.Random(seed * 1000 + k)
        with httpx.Client(base_url=ls.url, headers={"Authorization": f"Token {ls.token}"}, timeout=120) as c:
            barrier.wait()
            for n in range(1, len(points) + 1):
                t = time.perf_counter()
                try:
                    r = c.post(f"/api/ml/{ml_id}/interactive-annotating",
                               json={"task": task_id, "context": {"result": points[:n]}})
                    data = (r.json().get("data") or {}) if r.status_code == 200 else {}
                    ok = any(x.get("type") == "brushlabels" for x in data.get("result", []))
                    problem = None if ok else f"{r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as exc:
                    problem = repr(exc)
                dt = time.perf_counter() - t
                with lock:
                    times.append(dt)
                    unrefined[0] += problem is None and data.get("refined") is False
                    if problem:
                        failures.append(problem)
                if n < len(points) and think_s > 0:
                    time.sleep(think_s * rng.uniform(0.5, 1.5))

    threads = [threading.Thread(target=labeler, args=(k, t, p)) for k, (t, p) in enumerate(jobs)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return {"labelers": len(jobs), **latency_summary(times), "failed_requests": len(failures),
            "answered_unrefined": unrefined[0], "failures": failures[:5], "wall_s": round(time.monotonic() - t0, 1), "_times": times}


def during_finetune(ls, project_id: int, ml_id: int, backend_url: str, work: Path, tasks: list[int], sequences, start: int,
                    size: tuple[int, int], idle_row: dict, args) -> dict:
    """The learning-loop phase (see the module's docstring)."""
    import httpx

    from model.corrections import open_store

    w, h = size
    # Corrections: the first labelers' last masks, submitted as annotations in Label Studio.
    submitted = 0
    for k in range(min(8, start)):
        points = keypoints(sequences[k], w, h)
        r = ls.api("POST", f"/api/ml/{ml_id}/interactive-annotating", json={"task": tasks[k], "context": {"result": points}})
        brush = [x for x in r.json()["data"]["result"] if x.get("type") == "brushlabels"]
        a = ls.api("POST", f"/api/tasks/{tasks[k]}/annotations", json={"result": points + brush})
        submitted += a.status_code in (200, 201)
    store = open_store(work / "data")
    deadline = time.monotonic() + 60
    while store.count() < submitted and time.monotonic() < deadline:
        time.sleep(0.5)
    stored = store.count()
    with httpx.Client(base_url=backend_url, timeout=30) as c:
        served_before = c.get("/health").json()["model_version"]
        r = c.post("/webhook", json={"action": "START_TRAINING", "project": {"id": project_id}})
        if r.status_code != 200:
            raise RuntimeError(f"START_TRAINING refused: {r.status_code} {r.text[:300]}")
        during, swap, failures, job = [], [], 0, {}
        t0 = time.monotonic()
        k = start
        promoted_by_hand = False
        while time.monotonic() - t0 < 900:
            job = c.get("/health").json()["training"]
            running = job.get("state") in ("running", "requested")
            if not running and job.get("state") == "succeeded" and not job.get("promoted") and not promoted_by_hand:
                subprocess.run([sys.executable, "-m", "model.cli", "models", "promote", job["version"], "--store",
                                str(work / "data")], check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
                promoted_by_hand = True
            task, seq = tasks[k % len(tasks)], sequences[k % len(sequences)]
            k += 1
            row = run_labelers(ls, ml_id, [(task, keypoints(seq, w, h))], args.think_s, args.seed)
            failures += row["failed_requests"]
            (during if running else swap).append(row)
            if not running:
                if job.get("state") == "failed":
                    break
                if c.get("/health").json()["model_version"] == job.get("version"):
                    # the new model answers: one more labeler's clicks on it, then stop
                    swap.append(run_labelers(ls, ml_id, [(tasks[k % len(tasks)], keypoints(sequences[k % len(sequences)], w, h))],
                                             args.think_s, args.seed))
                    failures += swap[-1]["failed_requests"]
                    break
        served_after = c.get("/health").json()["model_version"]
    times_during = [t for r in during for t in r.pop("_times")]
    for r in swap:
        r.pop("_times")
    result = {"annotations_submitted": submitted, "corrections_stored": stored, "steps": args.finetune_steps,
              "job": job, "promoted_by_hand": promoted_by_hand, "served_before": served_before,
              "served_after": served_after, "during": latency_summary(times_during),
              "failed_requests": failures, "idle_p95_ms": idle_row.get("p95_ms")}
    if result["during"].get("p95_ms") and idle_row.get("p95_ms"):
        result["p95_ratio_during_vs_idle"] = round(result["during"]["p95_ms"] / idle_row["p95_ms"], 2)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labelers", default="1,8", help="comma-separated labeler counts, one row each")
    ap.add_argument("--clicks", type=int, default=5, help="clicks per labeler")
    ap.add_argument("--think-s", type=float, default=1.0, help="mean pause between a mask and the next click")
    ap.add_argument("--mode", help="the backend's output mode (default: its default)")
    ap.add_argument("--fast-when-waiting", type=int,
                    help="the backend's --fast-when-waiting (default: its own, 1; 0: always refine)")
    ap.add_argument("--finetune-steps", type=int, default=0,
                    help="also measure one labeler while the backend fine-tunes for this many steps (0: no)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/results/label-studio-load")
    args = ap.parse_args()

    from PIL import Image

    from e2e.label_studio_server import LS_BIN, LabelStudio
    from backend.label_config import shipped_label_config
    from model import Predictor
    from model.predictor_flags import OUTPUT_MODES

    if not LS_BIN.exists():
        ap.error(f"Label Studio is not installed at {LS_BIN} (scripts/install_label_studio.sh; LS_VENV)")
    counts = [int(n) for n in args.labelers.split(",") if n.strip()]
    predictor = Predictor.from_checkpoint(**OUTPUT_MODES[args.mode or "default"])
    extra = 16 if args.finetune_steps else 0  # fresh photos for the labeler during fine-tuning
    scenes = [photo(i) for i in range(max(counts) * len(counts) + extra)]
    sequences = [robot_sequence(predictor, img, gt, args.clicks) for img, gt in scenes]
    del predictor

    work = Path(tempfile.mkdtemp(prefix="fcanet-ls-load-"))
    ls = LabelStudio(work).start()
    proc = None
    report = {"command": "python " + " ".join(sys.argv), "cpu_count": os.cpu_count(), "clicks": args.clicks,
              "think_s": args.think_s, "mode": args.mode or "default", "fast_when_waiting": args.fast_when_waiting,
              "rows": []}
    try:
        proc, backend_url = start_backend(ls, work, args)
        project = ls.api("POST", "/api/projects", json={"title": "load", "label_config": shipped_label_config()}).json()
        ml = ls.api("POST", "/api/ml", json={"url": backend_url, "project": project["id"], "is_interactive": True,
                                             "title": "fcanet"})
        if ml.status_code not in (200, 201):
            raise RuntimeError(f"Label Studio refused the backend: {ml.status_code} {ml.text[:300]}")
        tasks = []
        for i, (img, _) in enumerate(scenes):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=90)
            up = ls.api("POST", f"/api/projects/{project['id']}/import",
                        files={"file": (f"photo{i}.jpg", buf.getvalue(), "image/jpeg")})
            if up.status_code not in (200, 201):
                raise RuntimeError(f"import failed: {up.status_code} {up.text[:300]}")
        listed = ls.api("GET", f"/api/projects/{project['id']}/tasks", params={"page_size": 1000}).json()
        listed = listed if isinstance(listed, list) else listed["tasks"]
        tasks = sorted(t["id"] for t in listed)
        h, w = scenes[0][0].shape[:2]
        # warm-up: the backend's first forward pass and Label Studio's first proxy call
        run_labelers(ls, ml.json()["id"], [(tasks[-1], keypoints(sequences[-1][:1], w, h))], 0, args.seed)
        start = 0
        for n in counts:
            jobs = [(tasks[start + k], keypoints(sequences[start + k], w, h)) for k in range(n)]
            start += n  # fresh images for every row: each labeler's first click pays for a new image
            before = _unrefined(backend_url)
            row = run_labelers(ls, ml.json()["id"], jobs, args.think_s, args.seed)
            row.pop("_times")
            row["unrefined_answers"] = _unrefined(backend_url) - before
            row["load_average"] = [round(x, 2) for x in os.getloadavg()]
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
        if args.finetune_steps:
            report["finetune"] = during_finetune(ls, project["id"], ml.json()["id"], backend_url, work, tasks, sequences, start,
                                                 (w, h), report["rows"][0], args)
            print(json.dumps(report["finetune"]), flush=True)
        base = report["rows"][0]
        for row in report["rows"]:
            if base.get("p95_ms") and row.get("p95_ms"):
                row["p95_ratio"] = round(row["p95_ms"] / base["p95_ms"], 2)
                row["p50_ratio"] = round(row["p50_ms"] / base["p50_ms"], 2)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        ls.stop()
        shutil.rmtree(work, ignore_errors=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    lines = ["| labelers | requests | p50 ms | p95 ms | max ms | failed | unrefined | p95 / 1 labeler |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in report["rows"]:
        lines.append(f"| {r['labelers']} | {r['requests']} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['max_ms']:.0f} | "
                     f"{r['failed_requests']} | {r['unrefined_answers']} | {r.get('p95_ratio', '')} |")
    text = (f"# Clicks through Label Studio, labelers at once\n\nCommand: `{report['command']}`\n\n"
            f"{args.clicks} clicks per labeler, {args.think_s} s mean pause, output mode {report['mode']}, "
            f"fast answers when waiting: {'backend default' if args.fast_when_waiting is None else args.fast_when_waiting}, "
            f"{report['cpu_count']} cores (Label Studio, the backend and the clients on the same machine).\n\n"
            + "\n".join(lines) + "\n")
    if "finetune" in report:
        f = report["finetune"]
        text += (f"\nDuring fine-tuning ({f['steps']} steps on {f['corrections_stored']} corrections submitted through "
                 f"Label Studio; job {f['job'].get('state')}, promoted {'by hand' if f['promoted_by_hand'] else 'by the gate'}"
                 f"; served {f['served_before']} -> {f['served_after']}): one labeler p50 {f['during'].get('p50_ms')} ms, "
                 f"p95 {f['during'].get('p95_ms')} ms over {f['during'].get('requests')} clicks, "
                 f"{f.get('p95_ratio_during_vs_idle')} x the idle p95; {f['failed_requests']} failed requests "
                 "during the job and across the swap.\n")
    (out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
