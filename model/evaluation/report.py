"""Writing an evaluation: metrics.json, samples.csv, report.md (a paper-style table)."""

from __future__ import annotations

import csv
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .loop import EvaluationResult


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform()}


def metrics_dict(result: EvaluationResult, *, dataset: str, method: str, checkpoint: str | None, sis: bool,
                 model: dict | None = None) -> dict[str, Any]:
    return {
        "dataset": dataset, "method": method, "checkpoint": checkpoint, "samples": len(result.samples),
        "max_clicks": result.max_clicks, "sis": sis, "noc": result.noc, "over_max": result.over_max,
        "miou_per_click": [round(v, 5) for v in result.miou_per_click],
        "seconds_per_click": round(result.seconds_per_click, 5), "model": model or {},
        "machine": machine_info(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


#: Post-processing steps a report's title names when they produced its figures, in pipeline order.
_STEPS = (("zoom_in", "zoom-in"), ("grid_align", "grid-align"), ("edge_refine", "edge refinement"),
          ("band_cut", "band cut"), ("graphcut_refine", "GrabCut refinement"))


def method_name(metrics: dict[str, Any]) -> str:
    """'fcanet + grid-align + edge refinement + band cut + SIS': the method and every step that
    produced the figures, read from the predictor's recorded options."""
    model = metrics.get("model") or {}
    steps = [label for key, label in _STEPS if model.get(key)]
    name = " + ".join([metrics["method"], *steps] + (["SIS"] if metrics["sis"] else []))
    precision = model.get("precision", "fp32")  # reports from before the option ran in float32
    return name if precision == "fp32" else f"{name} ({precision})"


def write_report(out_dir: str | Path, result: EvaluationResult, metrics: dict[str, Any]) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with open(out / "samples.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sample", "noc85", "noc90"] + [f"iou@{k}" for k in range(1, result.max_clicks + 1)])
        for s in result.samples:
            writer.writerow([s.name, s.noc["85"], s.noc["90"]] + [f"{v:.4f}" for v in s.ious])
    name = method_name(metrics)
    m = result.max_clicks
    lines = [
        f"# {metrics['dataset']}: {name}",
        "",
        f"{metrics['samples']} samples, robot user, up to {m} clicks; checkpoint `{metrics['checkpoint']}`; "
        f"{metrics['date']} on {metrics['machine']['cpu']} ({metrics['machine']['cores']} cores).",
        "",
        f"| Method | NoC@85 | NoC@90 | >={m}@90 | s/click |",
        "| --- | --- | --- | --- | --- |",
        f"| {name} | {result.noc['85']:.2f} | {result.noc['90']:.2f} | {result.over_max['90']} | "
        f"{result.seconds_per_click:.3f} |",
        "",
        "mIoU after k clicks: " + ", ".join(f"{k}: {v:.3f}" for k, v in enumerate(result.miou_per_click, 1)
                                            if k in (1, 2, 3, 5, 10, 15, 20)),
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
