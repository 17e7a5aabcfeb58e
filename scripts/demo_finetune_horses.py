"""Does the learning loop pay on a new domain from a few corrections, without forgetting?

The Weizmann horses (never in the bundled model's training data), sorted by name, are split
in two fixed halves: the first `--score-limit` (60) of the even-numbered half are the score set,
the first `--corrections` (30) of the odd-numbered half become corrections as a labeler would submit them (the robot user's clicks
with the served model, then the true mask). The project's fine-tuning job (`run_finetune`)
trains on them and its gate decides, with the configured anchor set (objects of the bundle's
own training domain) as the forgetting check. Then a second candidate is trained the careless
way (no original data, no L2-SP, BatchNorm statistics trained, a higher learning rate) and
offered to the same gate. Both candidates and the base are scored on the horse score set and
on all of GrabCut, with the networks' own outputs (what the gate scores) and, with
`--default-output`, with the predictor's default post-processing too.

    python scripts/demo_finetune_horses.py --out docs/results/finetune-horses

Writes report.json and report.md under --out (the fine-tuned checkpoints and the store go to
--work, which is not meant to be committed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

# This checkout's `model`, whatever else is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: name -> (description, FinetuneConfig overrides)
VARIANTS = {
    "mix": ("original data mixed in (the deployment names its training config)",
            {"l2sp_weight": 0.0}),
    "l2sp": ("L2-SP only (no original data)", {"original_config": None}),
    "none": ("no defence (no original data, no L2-SP)", {"original_config": None, "l2sp_weight": 0.0}),
    "careless": ("no defence, BatchNorm statistics trained, 6x the learning rate",
                 {"original_config": None, "l2sp_weight": 0.0, "freeze_batchnorm": False, "lr_factor": 6.0}),
}


def main() -> int:
    from model.finetune.gate import DEFAULT_ANCHOR_COUNT  # numpy only: --help stays light

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--horses", default="../shared/datasets/WeizmannHorse")
    ap.add_argument("--grabcut", default="../shared/datasets/GrabCut")
    ap.add_argument("--anchor-set", default="coco_mval:../shared/datasets/COCO_MVal",
                    help="the gate's forgetting check: objects of the bundle's training domain (NAME:ROOT)")
    ap.add_argument("--anchor-count", type=int, default=DEFAULT_ANCHOR_COUNT)
    ap.add_argument("--original-config", default="model/training/configs/default.yaml",
                    help="the bundle's training config, whose data the 'mix' variant mixes in")
    ap.add_argument("--checkpoint", help="base model (default: the bundled one)")
    ap.add_argument("--corrections", type=int, default=30)
    ap.add_argument("--score-limit", type=int, default=60,
                    help="score the first N horses of the score half (default 60: 164 cost hours on 2 "
                         "shared cores; 0: all)")
    ap.add_argument("--grabcut-limit", type=int, help="score only the first N GrabCut images (smoke runs)")
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--crop-size", type=int, default=320, help="fine-tuning crop side (the job's default 320)")
    ap.add_argument("--original-share", type=float, default=0.3,
                    help="share of each batch drawn from the original data in variants that mix it in")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the fine-tuning (2 cores)")
    ap.add_argument("--click-prefixes", action="store_true",
                    help="the job trains every prefix of the labeler's click sequences (FinetuneConfig.click_prefixes)")
    ap.add_argument("--annotator-clicks", type=int, default=5)
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument("--variants", default="mix,careless",
                    help=f"comma-separated, first is the one to promote; known: {', '.join(VARIANTS)}")
    ap.add_argument("--default-output", action="store_true",
                    help="also score GrabCut and the horses with the predictor's default post-processing "
                         "(what a labeler sees)")
    ap.add_argument("--horse-scores", default="first",
                    help="variants scored on the horse score set: 'first' (the one to promote), 'all', 'none'")
    ap.add_argument("--base-scores", help="reuse the base model's scores from this earlier report.json")
    ap.add_argument("--skip-base-scores", action="store_true",
                    help="do not score the base (for a second process running other variants; merge with "
                         "--merge)")
    ap.add_argument("--merge", nargs="+", metavar="REPORT",
                    help="only merge the variants of these report.json files into --out's and write report.md")
    ap.add_argument("--out", default="docs/results/finetune-horses")
    ap.add_argument("--work", default="runs/finetune-horses", help="store and checkpoints (not committed)")
    args = ap.parse_args()
    if args.merge:
        return merge(Path(args.out), [Path(m) for m in args.merge])

    import torch

    from model import Predictor, default_checkpoint_path
    from model.checkpoint import read_metadata
    from model.corrections import open_store
    from model.evaluation.datasets import load_dataset
    from model.evaluation.scoring import robot_clicks, score_checkpoint
    from model.finetune.job import FinetuneConfig, run_finetune

    torch.set_num_threads(args.threads)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    base = args.checkpoint or str(default_checkpoint_path())
    horses = load_dataset("davis", args.horses)  # img/<name>.jpg + gt/<name>.png, any value > 0 is the horse
    score_half, pool = horses[0::2][: args.score_limit or None], horses[1::2]
    corrections = pool[: args.corrections]
    assert not {s.name for s in corrections} & {s.name for s in score_half}
    grabcut = load_dataset("grabcut", args.grabcut)[: args.grabcut_limit]
    t0 = time.time()
    report: dict = {
        "command": "python scripts/demo_finetune_horses.py " + " ".join(
            f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in vars(args).items()
            if v is not None and v is not False and k not in ("base_scores", "merge")),
        "base": os.path.relpath(base), "base_version": read_metadata(base).version,
        "horses": {"score_set": len(score_half), "score_first_last": [score_half[0].name, score_half[-1].name],
                   "corrections": [s.name for s in corrections]},
        "grabcut_images": len(grabcut), "steps": args.steps, "threads": args.threads,
        "cpu": f"{os.cpu_count()} cores visible", "variants": {},
    }

    # The labeler: the served model with its default post-processing, up to annotator_clicks.
    predictor = Predictor.from_checkpoint(base)
    store = open_store(work / "store")
    for s in corrections:
        clicks = robot_clicks(predictor, s, args.annotator_clicks)
        store.add(source="gradio", image=s.load_image(), mask=s.gt, project="horses", annotation_id=None,
                  clicks=clicks, author="robot")
    del predictor

    if args.skip_base_scores:
        report["base_scores"] = None
    elif args.base_scores:
        previous = json.loads(Path(args.base_scores).read_text())
        report["base_scores"] = previous["base_scores"]
    else:
        scores = report["base_scores"] = {
            "horses": score_checkpoint(base, score_half, args.max_clicks, "horses, base"),
            "grabcut": score_checkpoint(base, grabcut, args.max_clicks, "GrabCut, base")}
        if args.default_output:
            scores["grabcut_default"] = score_checkpoint(base, grabcut, args.max_clicks, "GrabCut default, base",
                                                         output="default")
            scores["horses_default"] = score_checkpoint(base, score_half, args.max_clicks, "horses default, base",
                                                        output="default")
    for name in variants:
        description, overrides = VARIANTS[name]
        overrides = dict(overrides)
        lr = args.lr * overrides.pop("lr_factor", 1.0)
        cfg = FinetuneConfig(store=str(work / "store"), from_checkpoint=base, steps=args.steps, lr=lr,
                             out_dir=str(work / name), eval_max_clicks=args.max_clicks, holdout_fraction=0.25,
                             anchor_set=args.anchor_set, anchor_count=args.anchor_count,
                             original_config=overrides.pop("original_config", args.original_config),
                             original_share=args.original_share, crop_size=args.crop_size, threads=args.threads,
                             click_prefixes=args.click_prefixes, **overrides)
        result = run_finetune(cfg, progress=False)
        entry = {"description": description, "version": result.version, "promoted": result.promoted,
                 "gate": result.extra["gate"], "defence": result.extra["defence"], "lr": lr,
                 "freeze_batchnorm": cfg.freeze_batchnorm, "train_records": result.train_records,
                 "heldout_records": result.heldout_records,
                 "train_seconds": result.extra["train_seconds"], "train_cpu_seconds": result.extra["train_cpu_seconds"],
                 "job_seconds": round(result.seconds, 1),
                 "grabcut": score_checkpoint(result.checkpoint, grabcut, args.max_clicks, f"GrabCut, {name}")}
        if args.horse_scores == "all" or (args.horse_scores == "first" and name == variants[0]):
            entry["horses"] = score_checkpoint(result.checkpoint, score_half, args.max_clicks, f"horses, {name}")
            if args.default_output:
                entry["horses_default"] = score_checkpoint(result.checkpoint, score_half, args.max_clicks,
                                                           f"horses default, {name}", output="default")
        if args.default_output:
            entry["grabcut_default"] = score_checkpoint(result.checkpoint, grabcut, args.max_clicks,
                                                        f"GrabCut default, {name}", output="default")
        report["variants"][name] = entry
        (out / "report.json").write_text(json.dumps(report, indent=2))
    report["seconds"] = round(time.time() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    if report["base_scores"] is not None:
        (out / "report.md").write_text(markdown(report))
        print(markdown(report))
    return 0


def merge(out: Path, others: list[Path]) -> int:
    report = json.loads((out / "report.json").read_text())
    for other in others:
        data = json.loads(other.read_text())
        for name, entry in data["variants"].items():
            report["variants"][name] = {**entry, "process": data["command"]}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def markdown(report: dict) -> str:
    b = report["base_scores"]
    lines = [f"# Fine-tuning on horses: {len(report['horses']['corrections'])} corrections, "
             f"{report['steps']} steps, {report['threads']} threads",
             "", f"Base `{report['base']}` ({report['base_version']}); score set: {report['horses']['score_set']} "
             f"horses (even-numbered half), GrabCut: {report['grabcut_images']} images; networks' own outputs "
             "unless marked default.", "",
             f"Command: `{report['command']}`", "",
             "| model | horses NoC@90 | horses mIoU@1 | horses default NoC@90 | horses default mIoU@1 | "
             "GrabCut NoC@90 | GrabCut default NoC@90 | gate | train wall s | train CPU s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]

    def row(name, s, gate="", wall="", cpu=""):
        gd = s.get("grabcut_default", {}).get("noc90")
        horses = (f"{s['horses']['noc90']:.2f} | {s['horses']['miou_per_click'][0]:.3f}" if "horses" in s
                  else "not scored | not scored")
        hd = s.get("horses_default")
        horses_default = (f"{hd['noc90']:.2f} | {hd['miou_per_click'][0]:.3f}" if hd else " | ")
        lines.append(f"| {name} | {horses} | {horses_default} | "
                     f"{s['grabcut']['noc90']:.2f} | {'' if gd is None else f'{gd:.2f}'} | {gate} | {wall} | {cpu} |")

    row("base (bundle)", b)
    for name, v in report["variants"].items():
        row(f"{name}: {v['description']}", v, "promoted" if v["promoted"] else "refused",
            v["train_seconds"], v["train_cpu_seconds"])
    lines += ["", "Gate reasons:", ""]
    for name, v in report["variants"].items():
        lines.append(f"- {name}: " + "; ".join(v["gate"]["reasons"]))
    base90 = b["horses"]["noc90"]
    for name, v in report["variants"].items():
        horses = (f"horses NoC@90 {base90:.2f} -> {v['horses']['noc90']:.2f} "
                  f"({100 * (v['horses']['noc90'] - base90) / base90:+.0f} %)" if "horses" in v else "horses not scored")
        if "horses_default" in v and "horses_default" in b:
            d0, d1 = b["horses_default"]["noc90"], v["horses_default"]["noc90"]
            horses += f"; default output {d0:.2f} -> {d1:.2f} ({100 * (d1 - d0) / d0:+.0f} %)"
        if "grabcut_default" in v and "grabcut_default" in b:
            horses += (f"; GrabCut default output NoC@90 {b['grabcut_default']['noc90']:.2f} -> "
                       f"{v['grabcut_default']['noc90']:.2f}")
        lines.append(f"- {name}: {horses}, GrabCut NoC@90 "
                     f"{b['grabcut']['noc90']:.2f} -> {v['grabcut']['noc90']:.2f}, weight drift "
                     f"{v['defence']['weight_drift']:.2f}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
