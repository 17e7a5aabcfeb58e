"""A prepared GPU training window: train on a packed set within a time budget, return fp16.

Three steps, one command each (`scripts/gpu_campaign.sh` runs them in order):

  plan   (here)          pack the campaign config's sources into .gpu/pack.npz if needed,
                         check what would travel, print the device `run` call to make.
  train  (GPU machine)   `python3 -m model.training.gpu_campaign train ...`: the campaign
                         config with its sources replaced by the pack's parts, trained under
                         its time budget, the last weights written to OUT as float16
                         safetensors with the training log and a summary.
  score  (here)          the returned checkpoint and the bundle on the campaign's held-out
                         objects (network alone, as training validates); the GrabCut figures
                         come from `fcanet evaluate`, run by the script.

This module imports only what the GPU machine's python has (torch, numpy, OpenCV, SciPy,
safetensors, PyYAML, Pillow): `python3 -m model.training.gpu_campaign` never imports the
`fcanet` command's other areas (web stack, Gradio, pycocotools, tqdm).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

#: The campaign: recipe and sources (the pack is made from its sources).
CAMPAIGN_CONFIG = "model/training/configs/gpu-h100.yaml"
#: Carried folder (ignored by git) that holds the pack on its way to the machine.
CARRY_DIR = ".gpu"
PACK_PATH = f"{CARRY_DIR}/pack.npz"
#: The device tool's per-command limit is 600 s; the command is given 570 and stops itself
#: (SIGTERM to the trainer, which saves and exports) at 540.
RUN_TIMEOUT_S = 570
TRAIN_TIMEOUT_S = 540
#: What one device command may take along: the working tree and carried paths together.
TREE_LIMIT_MIB = 64.0
CHECKPOINT_NAME = "fcanet-gpu-fp16.safetensors"
RETURNED = [CHECKPOINT_NAME, "train-log.jsonl", "summary.json", "console.log", "device.txt"]


# ---------------------------------------------------------------------------------------- train
def campaign_config(config: str, pack: str, work_dir: str, steps: int | None = None,
                    time_budget_s: float | None = None, device: str | None = None,
                    batch_size: int | None = None, num_workers: int | None = None,
                    robot_workers: int | None = None):
    """The TrainConfig that runs on the machine: `config`'s recipe on the parts of `pack`,
    no held-out split (the pack already left it out) and no validation (scored here)."""
    from .config import TrainConfig
    from .pack import PackedSet, packed_source_specs, sources_digest

    cfg = TrainConfig.from_yaml(config)
    packed = PackedSet(pack)
    if packed.index.get("sources_digest") != sources_digest(cfg):
        raise ValueError(f"{pack} was packed from other sources or another held-out split than {config} "
                         f"names (packed from {packed.index.get('config')!r}): pack it again")
    overrides: dict[str, Any] = {"sources": packed_source_specs(pack), "holdout_fraction": 0.0,
                                 "val_samples": 0, "val_every": 0, "out_dir": work_dir}
    for key, value in (("steps", steps), ("time_budget_s", time_budget_s), ("device", device),
                       ("batch_size", batch_size), ("num_workers", num_workers),
                       ("robot_workers", robot_workers)):
        if value is not None:
            overrides[key] = value
    if steps is not None and cfg.snapshot_every:
        overrides["snapshot_every"] = 0
    return replace(cfg, **overrides)


def _device_name(trainer) -> str:
    import torch

    if trainer.ctx.device.type == "cuda":
        return torch.cuda.get_device_name(trainer.ctx.device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def train(args) -> int:
    """Train, then write OUT/fcanet-gpu-fp16.safetensors, OUT/train-log.jsonl, OUT/summary.json."""
    import torch

    from ..checkpoint import load_checkpoint, save_checkpoint
    from .run import build_trainer
    from .trainer import LOG_FILE

    started = time.time()
    if not args.out:
        raise ValueError("--out is required where $OUT is not set")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work_dir)
    if work.exists():
        if any(work.iterdir()) and not (work / "state.pt").is_file() and not (work / LOG_FILE).is_file():
            raise ValueError(f"--work-dir {work} holds files that are not a training run: choose another")
        shutil.rmtree(work)  # a fresh run each time: the window is too short to resume into
    cfg = campaign_config(args.config, args.pack, str(work), steps=args.steps, time_budget_s=args.time_budget,
                          device=args.device, batch_size=args.batch_size, num_workers=args.workers,
                          robot_workers=args.robot_workers)
    if cfg.device != "cpu" and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    while True:
        trainer = build_trainer(cfg)
        device = _device_name(trainer)
        print(f"training {cfg.version_prefix} on {device}: batch {cfg.batch_size}, crop {cfg.crop_size}, "
              f"{cfg.precision}, up to {cfg.steps} steps / {cfg.time_budget_s} s, {cfg.num_workers} loader "
              f"workers, {cfg.robot_workers} robot workers", flush=True)
        trainer.echo_log = True
        fit_started = time.time()
        try:
            trainer.fit(progress=False)
            break
        except torch.cuda.OutOfMemoryError:
            # Only the first step can run out of memory (every step has the same shapes): a guessed
            # batch too large for the card costs a few seconds, not the window.
            if trainer.step > 0 or cfg.batch_size < 8:
                raise
            print(f"batch {cfg.batch_size} does not fit in GPU memory: halving it", flush=True)
            trainer.close_pools()
            del trainer
            torch.cuda.empty_cache()
            shutil.rmtree(work, ignore_errors=True)
            cfg = replace(cfg, batch_size=cfg.batch_size // 2,
                          time_budget_s=max(60.0, cfg.time_budget_s - (time.time() - fit_started))
                          if cfg.time_budget_s else None)
    fit_seconds = time.time() - fit_started
    network, metadata = load_checkpoint(work / "last.safetensors")
    metadata = replace(metadata, provenance={**metadata.provenance, "stored_as": "float16",
                                             "trained_with": f"{device}, {fit_seconds:.0f} s"})
    save_checkpoint(out / CHECKPOINT_NAME, network, metadata, dtype=torch.float16)
    if (work / LOG_FILE).is_file():
        shutil.copyfile(work / LOG_FILE, out / "train-log.jsonl")
    summary = {
        "version": metadata.version, "steps": trainer.step, "crops": trainer.step * cfg.batch_size,
        "fit_seconds": round(fit_seconds, 1), "total_seconds": round(time.time() - started, 1),
        "crops_per_second": round(trainer.step * cfg.batch_size / max(fit_seconds, 1e-9), 2),
        "device": device, "torch": torch.__version__, "python": sys.version.split()[0],
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if trainer.ctx.device.type == "cuda" else None,
        "checkpoint": CHECKPOINT_NAME, "checkpoint_bytes": (out / CHECKPOINT_NAME).stat().st_size,
        "config": args.config, "pack": args.pack, "recipe": cfg.to_dict(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "recipe"}), flush=True)
    trainer.close()
    return 0


# ----------------------------------------------------------------------------------------- plan
def travelling_bytes(root: Path, carry: list[str]) -> tuple[int, list[tuple[int, str]]]:
    """(bytes, largest files) of what a device call sends: tracked and untracked-not-ignored
    files of the checkout at `root`, plus the carried paths."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.decode().split("\0")
    files = [root / p for p in listed if p]
    for c in carry:
        path = root / c
        files.extend(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else files.append(path)
    sizes = sorted(((f.stat().st_size, str(f.relative_to(root))) for f in set(files) if f.is_file()), reverse=True)
    return sum(s for s, _ in sizes), sizes[:8]


def run_call(config: str = CAMPAIGN_CONFIG, extra: str = "") -> dict[str, Any]:
    """The arguments of the device tool's `run` call."""
    command = "bash scripts/gpu_campaign.sh device" + (f" {extra}" if extra else "")
    if config != CAMPAIGN_CONFIG:
        command = f"GPU_CONFIG={config} " + command
    return {"kind": "nvidia-h100-x1", "command": command, "carry": [CARRY_DIR], "timeout_s": RUN_TIMEOUT_S}


def plan(args) -> int:
    from .config import TrainConfig
    from .pack import PackedSet, pack_config, sources_digest

    root = Path(args.root)
    pack = root / PACK_PATH
    cfg = TrainConfig.from_yaml(root / args.config)
    code_bytes = travelling_bytes(root, [])[0]
    # What the code and the bundle leave of the limit (1 MiB spare for files added before the call).
    budget = min(args.max_mib, TREE_LIMIT_MIB - code_bytes / 2**20 - 1.0)
    room = f"the pack may take {budget:.1f} MiB" if budget > 0 else "no room is left for a pack"
    print(f"the checkout sends {code_bytes / 2**20:.1f} MiB without the pack: {room}")
    fresh = pack.is_file() and PackedSet(pack).index.get("sources_digest") == sources_digest(cfg)
    if not fresh or args.repack or (args.size_check and pack.stat().st_size > budget * 2**20):
        if budget <= 1:
            raise ValueError(f"the checkout alone sends {code_bytes / 2**20:.1f} MiB: no room for a pack "
                             f"under the {TREE_LIMIT_MIB:g} MiB limit (see the largest files below)"
                             + "".join(f"\n  {s / 2**20:6.1f} MiB  {n}" for s, n in travelling_bytes(root, [])[1]))
        print(f"packing {args.config} into {PACK_PATH} ...", flush=True)
        summary = pack_config(cfg, pack, quality=args.quality, short_side=args.short_side,
                              max_mib=budget if args.size_check else args.max_mib, min_quality=args.min_quality,
                              config_name=args.config, progress=lambda line: print(" ", line, flush=True))
        print(f"packed {summary.images} images, {summary.objects} objects at quality {summary.quality}: "
              f"{summary.mib:.1f} MiB in {summary.seconds:.0f} s")
    else:
        print(f"{PACK_PATH} is up to date with {args.config} ({pack.stat().st_size / 2**20:.1f} MiB)")
    total, largest = travelling_bytes(root, [CARRY_DIR])
    print(f"the device call would send {total / 2**20:.1f} MiB (limit {TREE_LIMIT_MIB:g} MiB)")
    if total > TREE_LIMIT_MIB * 2**20 and args.size_check:
        print("too large: the largest files that would travel are", file=sys.stderr)
        for size, name in largest:
            print(f"  {size / 2**20:6.1f} MiB  {name}", file=sys.stderr)
        print("ignore or untrack what training does not need (old run checkpoints), or pack smaller "
              "(--quality, --short-side)", file=sys.stderr)
        return 1
    print("device call (run tool arguments):")
    print(json.dumps(run_call(args.config), indent=1))
    print("it returns into $OUT: " + ", ".join(RETURNED))
    return 0


# ---------------------------------------------------------------------------------------- score
def heldout_scores(config: str, checkpoints: list[str], samples: int | None = None) -> list[dict[str, Any]]:
    """The campaign's held-out objects (its config's split, `val_samples` of them, network alone)
    scored for each checkpoint, as training validation scores them."""
    from ..checkpoint import load_checkpoint
    from .config import TrainConfig
    from .run import make_validator, training_sources

    cfg = TrainConfig.from_yaml(config)
    if samples is not None:
        cfg = replace(cfg, val_samples=samples)
    validate = make_validator(cfg, training_sources(cfg)[2])
    if validate is None:
        raise ValueError(f"{config} holds out no objects to score")
    results = []
    for path in checkpoints:
        network, metadata = load_checkpoint(path)
        results.append({"checkpoint": path, "version": metadata.version, **validate(network, metadata)})
    return results


def score(args) -> int:
    results = heldout_scores(args.config, [args.bundle, args.candidate], samples=args.samples)
    rows = []
    for name, r in zip(("bundle", "candidate"), results):
        miou = r["miou_per_click"]
        rows.append({"which": name, "version": r["version"], "heldout_noc85": r["noc85"], "heldout_noc90": r["noc90"],
                     "heldout_miou1": miou[0] if miou else None, "samples": r["samples"]})
    for which, folder in (("bundle", args.bundle_grabcut), ("candidate", args.candidate_grabcut)):
        if folder:
            m = json.loads((Path(folder) / "metrics.json").read_text())
            row = next(r for r in rows if r["which"] == which)
            row.update({"grabcut_noc85": m["noc"]["85"], "grabcut_noc90": m["noc"]["90"],
                        "grabcut_miou1": m["miou_per_click"][0], "grabcut_samples": m["samples"]})
    for row in rows:
        print(json.dumps(row))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    better = rows[1]["heldout_noc90"] < rows[0]["heldout_noc90"]
    print(f"held-out NoC@90: bundle {rows[0]['heldout_noc90']:.2f}, candidate {rows[1]['heldout_noc90']:.2f} "
          f"({'lower: better' if better else 'not lower'})")
    return 0


# ------------------------------------------------------------------------------------------ cli
def add_arguments(sub) -> None:
    t = sub.add_parser("train", help="(on the GPU machine) train on the pack within the time budget, write fp16 to OUT")
    t.add_argument("--config", default=CAMPAIGN_CONFIG)
    t.add_argument("--pack", default=PACK_PATH)
    t.add_argument("--out", default=os.environ.get("OUT"), help="folder for the returned files (default $OUT)")
    t.add_argument("--work-dir", default="/tmp/fcanet-gpu-run", help="training state (not returned)")
    t.add_argument("--steps", type=int, help="override the schedule's steps (the dry run: 3)")
    t.add_argument("--time-budget", type=float, help="override time_budget_s")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the config's device")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--workers", type=int, help="override num_workers")
    t.add_argument("--robot-workers", type=int, help="override robot_workers")
    t.set_defaults(func=train)

    p = sub.add_parser("plan", help="(here) pack if needed, check the size that travels, print the device call")
    p.add_argument("--config", default=CAMPAIGN_CONFIG)
    p.add_argument("--root", default=".", help="the checkout the device call sends")
    p.add_argument("--repack", action="store_true")
    p.add_argument("--quality", type=int, default=75, help="image quality to start from (default 75)")
    p.add_argument("--min-quality", type=int, default=50,
                   help="lower the quality down to this to fit the size left (default 50)")
    p.add_argument("--short-side", type=int)
    p.add_argument("--max-mib", type=float, default=45.0, help="the pack's own limit (default 45)")
    p.add_argument("--no-size-check", dest="size_check", action="store_false",
                   help="report the size that would travel without failing on it (the CPU dry run)")
    p.set_defaults(func=plan)

    s = sub.add_parser("score", help="(here) held-out figures of the returned checkpoint and the bundle")
    s.add_argument("--candidate", required=True)
    s.add_argument("--bundle", default="model/weights/fcanet-efficientnet-lite0.safetensors")
    s.add_argument("--config", default=CAMPAIGN_CONFIG)
    s.add_argument("--samples", type=int, help="held-out objects (default: the config's val_samples)")
    s.add_argument("--bundle-grabcut", help="`fcanet evaluate` folder of the bundle on GrabCut")
    s.add_argument("--candidate-grabcut", help="`fcanet evaluate` folder of the candidate on GrabCut")
    s.add_argument("--json", help="also write the rows here")
    s.set_defaults(func=score)


def _input_errors(func):
    """ValueError (a stale pack, a bad config) -> the `fcanet` command's clear error, no traceback."""
    def run(args):
        from ..errors import FcanetInputError

        try:
            return func(args)
        except ValueError as exc:
            raise FcanetInputError(str(exc)) from None
    return run


def register(sub) -> None:
    g = sub.add_parser("gpu-campaign", help="the prepared GPU training window: plan, train (on the GPU), score")
    steps = g.add_subparsers(dest="gpu_step", metavar="STEP", required=True)
    add_arguments(steps)
    for parser in steps.choices.values():
        parser.set_defaults(func=_input_errors(parser.get_default("func")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m model.training.gpu_campaign", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser.add_subparsers(dest="gpu_step", metavar="STEP", required=True))
    args = parser.parse_args(argv)
    if getattr(args, "out", "") is None:
        parser.error("--out is required where $OUT is not set")
    from ..errors import FcanetInputError

    try:
        return int(args.func(args) or 0)
    except (ValueError, FcanetInputError) as exc:
        print(f"gpu_campaign {args.gpu_step}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
