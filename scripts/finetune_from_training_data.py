"""The fine-tuning recipe as a training recipe: corrections made from the bundle's own training data.

A short fine-tune on a few dozen corrections of a new domain raised GrabCut's first-click IoU more
than whole campaigns of the main recipe did (docs/learning-loop.md). This command asks whether the
recipe, not the new domain, carries the gain: it builds a corrections store from objects of the
allowed training sources (the training split of a training config: COCO_MVal, BSDS500, CCP,
copy-paste; the config's held-out split is never used), with the robot user's clicks on the
served model as a labeler's, runs the project's fine-tuning job on it (`run_finetune`, original
data mixed in), and scores base and candidate with the networks' own outputs on the config's
fixed held-out split and on GrabCut.

    python scripts/finetune_from_training_data.py --config model/training/configs/continue-c16.yaml \\
        --corrections 60 --steps 150 --out runs/ft-recipe/c60-s150

Writes OUT/report.json (and OUT/work/: the store and the candidate checkpoint, not committed).
Rerun an interrupted run with the same arguments: it clicks only the objects it had not stored and
continues training from the last saved state (every 200 steps or quarter of the steps, whichever is
sooner, and the step a SIGTERM hit).
GrabCut is a benchmark here, never a training source.

A candidate worth bundling is written as a bundle (its version, the training data it really saw,
this stage's recipe in its provenance) with

    python scripts/finetune_from_training_data.py --bundle-from runs/ft-recipe/RUN \
        --bundle-version effl0-c14-whole-objects --bundle-to model/weights/fcanet-efficientnet-lite0.safetensors
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pick_objects(cfg, count: int, seed: int, min_area_fraction: float = 0.0):
    """`count` objects drawn by source weight from the config's training split (held-out excluded),
    each covering at least `min_area_fraction` of its image, as (name, sample) pairs. Images are read
    only when clicked (`sample.load_image()`): a stage of thousands of objects would otherwise hold
    every photo in memory at once."""
    import numpy as np

    from model.training.run import training_sources

    sources, weights, _ = training_sources(cfg)
    rng = np.random.default_rng(seed)
    p = np.asarray(weights, float) / float(np.sum(weights))
    total = sum(len(s) for s in sources)
    picked, seen = [], set()
    while len(picked) < count:
        if len(seen) >= total:
            raise ValueError(f"only {len(picked)} objects of the training split meet the size limits, not {count}")
        s = int(rng.choice(len(sources), p=p))
        i = int(rng.integers(len(sources[s])))
        if (s, i) in seen:
            continue
        seen.add((s, i))
        sample = sources[s][i]
        mask = sample.load_mask()
        if mask.sum() < 400:  # a click target a labeler would not bother with
            continue
        if mask.mean() < min_area_fraction:
            continue
        picked.append((f"{getattr(sources[s], 'name', s)}:{sample.image_id}", sample))
    return picked


def objects_already_clicked(store, names: list[str]) -> int:
    """How many of `names` (the run's objects, in the order they are clicked) an interrupted earlier
    run of the same command stored; raises when the store holds anything else."""
    stored = [r.task_id for r in store.list()]
    if stored != names[: len(stored)]:
        raise ValueError(f"{store!r} holds {len(stored)} records that are not the first objects of this run: "
                         "pick a new --out")
    return len(stored)


def write_bundle(run: Path, version: str, to: Path) -> None:
    """The candidate of `run` (an earlier --out) as a bundle: the same weights, metadata that names
    the data it was trained on (its config's `trained_on`, not the fine-tuning job's "corrections",
    which here are objects of that same data) and this stage's settings."""
    import dataclasses

    from model.checkpoint import load_checkpoint, read_metadata, save_checkpoint
    from model.training.config import TrainConfig

    report = json.loads((run / "report.json").read_text())
    network, meta = load_checkpoint(report["candidate"])
    base = read_metadata(report["base"])
    cfg = TrainConfig.from_yaml(report["config"]["config"])
    trained_on = list(dict.fromkeys([*base.provenance.get("trained_on", []), *cfg.trained_on]))
    provenance = dict(meta.provenance)
    provenance.update({
        "trained_on": trained_on, "recipe": {**meta.provenance.get("recipe", {}), "trained_on": trained_on},
        "stage": {"script": report["command"], "objects": len(report["corrections"])
                  if isinstance(report["corrections"], list) else report["corrections"],
                  "objects_from": report["config"]["config"],
                  "min_area_fraction": report["config"].get("min_area_fraction", 0.0),
                  "candidate_version": meta.version},
    })
    save_checkpoint(to, network, dataclasses.replace(meta, version=version, provenance=provenance))
    print(f"wrote {to} ({version}, trained on {', '.join(trained_on)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="model/training/configs/continue-c16.yaml",
                    help="training config whose training split gives the corrections and whose held-out split scores")
    ap.add_argument("--original-config", default="model/training/configs/default.yaml",
                    help="config whose data the job mixes in (the learning loop's defence)")
    ap.add_argument("--checkpoint", help="base model (default: the bundled one)")
    ap.add_argument("--corrections", type=int, default=60)
    ap.add_argument("--min-area-fraction", type=float, default=0.0,
                    help="only objects covering at least this fraction of their image (large, whole objects)")
    ap.add_argument("--store", help="train on this existing store (an earlier run's OUT/work/store) instead of building one")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--crop-size", type=int, default=320)
    ap.add_argument("--original-share", type=float, default=0.3)
    ap.add_argument("--first-loss-weight", type=float, default=1.0,
                    help="weight of the first-click head's loss (1.0: the paper's sum)")
    ap.add_argument("--boundary-channels", type=int,
                    help="grow a boundary head of this width (model/network/boundary_head.py) before training")
    ap.add_argument("--backbone", choices=["efficientnet_lite1"],
                    help="deepen the base (EfficientNet-Lite0) into this backbone before training (model/network/deepen.py)")
    ap.add_argument("--train-batchnorm", action="store_true", help="update BatchNorm statistics (default: frozen)")
    ap.add_argument("--ema-decay", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--annotator-clicks", type=int, default=5)
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument("--grabcut", default="../shared/datasets/GrabCut")
    ap.add_argument("--grabcut-limit", type=int, help="score only the first N GrabCut images")
    ap.add_argument("--skip-base", action="store_true", help="do not score the base model (known figures)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="run folder (required unless --bundle-from)")
    ap.add_argument("--bundle-from", help="an earlier run folder: write its candidate as a bundle and stop")
    ap.add_argument("--bundle-version", help="the bundle's version (with --bundle-from)")
    ap.add_argument("--bundle-to", help="where to write the bundle (with --bundle-from)")
    args = ap.parse_args()
    if args.bundle_from:
        if not (args.bundle_version and args.bundle_to):
            ap.error("--bundle-from needs --bundle-version and --bundle-to")
        write_bundle(Path(args.bundle_from), args.bundle_version, Path(args.bundle_to))
        return 0
    if not args.out:
        ap.error("--out is required")

    import torch

    from model import Predictor, default_checkpoint_path
    from model.corrections import open_store
    from model.errors import TrainingStopped
    from model.evaluation.datasets import load_dataset
    from model.evaluation.scoring import robot_clicks, score_checkpoint
    from model.finetune.job import FinetuneConfig, run_finetune
    from model.training.config import TrainConfig
    from model.training.run import make_validator, training_sources

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    work = out / "work"
    if (work / "candidate" / "finetune.json").exists():
        ap.error(f"{work / 'candidate'} holds a finished run: pick a new --out")
    work.mkdir(parents=True, exist_ok=True)
    base = args.checkpoint or str(default_checkpoint_path())
    cfg = TrainConfig.from_yaml(args.config)
    t0 = time.time()

    store_path = Path(args.store) if args.store else work / "store"
    names = []
    if not args.store:
        from model.evaluation.datasets import Sample

        store = open_store(store_path)
        picked = pick_objects(cfg, args.corrections, args.seed, args.min_area_fraction)
        done = objects_already_clicked(store, [name for name, _ in picked])
        if done:
            print(f"{store_path} already holds the first {done} objects: clicking the other {len(picked) - done}")
        labeler = Predictor.from_checkpoint(base)
        for name, source_sample in picked[done:]:
            image, mask = source_sample.load_image(), source_sample.load_mask()
            sample = Sample(name=name, load_image=lambda image=image: image, gt=mask)
            clicks = robot_clicks(labeler, sample, args.annotator_clicks)
            # task_id names the object, so an interrupted run resumes where it stopped
            store.add(source="gradio", image=image, mask=mask, project="training-data", task_id=name,
                      annotation_id=None, clicks=clicks, author="robot")
        names = [name for name, _ in picked]
        del labeler
    build_seconds = time.time() - t0

    ft = FinetuneConfig(store=str(store_path), from_checkpoint=base, steps=args.steps, lr=args.lr,
                        batch_size=args.batch_size, crop_size=args.crop_size, out_dir=str(work / "candidate"),
                        eval_max_clicks=args.max_clicks, holdout_fraction=0.0, anchor_fraction=0.0,
                        original_config=args.original_config, original_share=args.original_share,
                        freeze_batchnorm=not args.train_batchnorm, ema_decay=args.ema_decay,
                        l2sp_weight=0.0, seed=args.seed, threads=args.threads,
                        first_loss_weight=args.first_loss_weight, boundary_channels=args.boundary_channels,
                        backbone=args.backbone,
                        resume=True)
    try:
        result = run_finetune(ft, progress=False)
    except TrainingStopped as exc:
        print(f"{exc} (rerun the same command)", file=sys.stderr)
        return 130

    _, _, held = training_sources(cfg)
    validate = make_validator(cfg, held)
    grabcut = load_dataset("grabcut", args.grabcut)[: args.grabcut_limit]

    def scores(checkpoint: str, desc: str) -> dict:
        from model.checkpoint import load_checkpoint

        network, meta = load_checkpoint(checkpoint)
        heldout = validate(network.eval(), meta)
        g = score_checkpoint(checkpoint, grabcut, args.max_clicks, desc)
        return {"heldout": {k: heldout[k] for k in ("noc85", "noc90", "miou_per_click") if k in heldout},
                "grabcut": {"images": g["samples"], "noc85": g["noc85"], "noc90": g["noc90"],
                            "miou_at_1": g["miou_per_click"][0]}}

    report = {"command": "python scripts/finetune_from_training_data.py " + " ".join(sys.argv[1:]),
              "base": os.path.relpath(base), "candidate": result.checkpoint, "version": result.version,
              "corrections": names or f"the store {store_path}", "build_seconds": round(build_seconds, 1),
              "train_seconds": result.extra["train_seconds"], "config": vars(args)}
    if not args.skip_base:
        report["base_scores"] = scores(base, "base")
    report["candidate_scores"] = scores(result.checkpoint, "candidate")
    report["seconds"] = round(time.time() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("base_scores", "candidate_scores", "train_seconds") if k in report}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
