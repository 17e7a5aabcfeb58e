"""One fine-tuning job: corrections in, a new model version out, promoted only if it is
not worse on held-out corrections and has not forgotten the base domain (`gate.py`).

Against forgetting, training mixes in the original training data when the deployment names
its training config (`original_config`), else keeps the weights near the base model's with an
L2-SP penalty (`l2sp.py`). The job can run with few threads and a lower priority so that a
server on the same machine keeps answering (`threads`, `nice`).

The served model is never touched here: the new checkpoint is written atomically under
the store, registered as a version, and promoted in the store; servers learn of it from
the store (`model.finetune.watch`). A crash or kill before promotion changes nothing.
"""

from __future__ import annotations

import json
import secrets
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .gate import DEFAULT_ANCHOR_COUNT, DEFAULT_ANCHOR_TOLERANCE, gate, score

#: The L2-SP weight when no original data is mixed in. Not tuned: it measurably shortens the
#: weights' drift from the base, but does not stop a new domain that contradicts the old one
#: (docs/learning-loop.md); the gate's forgetting check is what keeps such a model out.
DEFAULT_L2SP_WEIGHT = 0.5


@dataclass(frozen=True)
class FinetuneConfig:
    store: str
    from_checkpoint: str | None = None
    steps: int = 200
    out_dir: str | None = None
    files_dir: str | None = None
    holdout_fraction: float = 0.25
    crop_size: int = 320
    batch_size: int = 4
    lr: float = 0.005
    original_config: str | None = None
    original_share: float = 0.3
    eval_max_clicks: int = 20
    seed: int = 0
    project: str | None = None
    #: BatchNorm on the base model's running statistics: batches of 4 crops from a few dozen
    #: corrections would otherwise replace statistics learned on the whole training set.
    freeze_batchnorm: bool = True
    #: Moving average of the weights for the new version (0: the last raw weights).
    ema_decay: float = 0.0
    #: The forgetting check's anchor set, NAME:ROOT (`anchors.py`); None: a held-back slice
    #: (anchor_fraction of the images) of the earliest corrections, when the store has enough.
    anchor_set: str | None = None
    anchor_count: int = DEFAULT_ANCHOR_COUNT
    anchor_fraction: float = 0.15
    anchor_tolerance: float = DEFAULT_ANCHOR_TOLERANCE
    #: L2-SP weight (`l2sp.py`); None: DEFAULT_L2SP_WEIGHT without original data, 0 with it.
    l2sp_weight: float | None = None
    #: Weight of the first-click head's loss (`TrainConfig.first_loss_weight`; 1.0 as trained).
    first_loss_weight: float = 1.0
    #: Train the recorded click sequences' prefixes, not only whole sequences (`RealClickDataset`).
    click_prefixes: bool = False
    #: Grow a boundary head of this width on a base model without one (`model/network/boundary_head.py`);
    #: None: the base model's shape.
    boundary_channels: int | None = None
    #: Deepen an EfficientNet-Lite0 base into Lite1 before training (`model/network/deepen.py`);
    #: None: the base model's backbone.
    backbone: str | None = None
    #: Continue from out_dir's training state when an earlier run of the same job was interrupted
    #: (long fine-tunes used as training stages); off for the loop, whose every job is new.
    resume: bool = False
    #: Torch threads of the job (0: torch's default) and the niceness added to its process.
    threads: int = 0
    nice: int = 0

    def effective_l2sp_weight(self) -> float:
        if self.l2sp_weight is not None:
            return float(self.l2sp_weight)
        mixing = bool(self.original_config) and self.original_share > 0
        return 0.0 if mixing else DEFAULT_L2SP_WEIGHT


@dataclass
class FinetuneResult:
    version: str
    checkpoint: str
    base_checkpoint: str
    promoted: bool
    before: dict[str, Any]
    after: dict[str, Any]
    train_records: int
    heldout_records: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def split_records(records, fraction: float, seed: int):
    """(train, held-out) by image content hash, so one image never lands on both sides."""
    hashes = sorted({r.image_sha256 for r in records})
    if len(hashes) < 2 or fraction <= 0:
        return list(records), []
    rng = np.random.default_rng(seed)
    n_held = min(len(hashes) - 1, max(1, int(round(len(hashes) * fraction))))
    held = set(rng.permutation(hashes)[:n_held].tolist())
    return [r for r in records if r.image_sha256 not in held], [r for r in records if r.image_sha256 in held]


def base_checkpoint(store, explicit: str | None) -> str:
    if explicit:
        return explicit
    promoted = store.promoted_model()
    if promoted and Path(promoted["path"]).is_file():
        return promoted["path"]
    from ..predictor import default_checkpoint_path

    return str(default_checkpoint_path())


def run_finetune(cfg: FinetuneConfig, progress: bool = True) -> FinetuneResult:
    from ..corrections import open_store
    from ..training.config import TrainConfig
    from ..training.trainer import Trainer
    from .data import build_finetune_dataset

    from .anchors import configured_anchor_samples, earliest_correction_anchors

    start = time.time()
    if cfg.nice:
        os.nice(cfg.nice)  # below the server's priority: predictions first, training with what is left
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    store = open_store(cfg.store, files_dir=cfg.files_dir) if cfg.files_dir else open_store(cfg.store)
    records = store.list(project=cfg.project) if cfg.project else store.list()
    if not records:
        from ..errors import FcanetInputError

        raise FcanetInputError(f"the corrections store {cfg.store} holds no corrections to fine-tune on")
    if cfg.anchor_set:
        anchor_records, rest = [], list(records)
        anchor_samples = configured_anchor_samples(cfg.anchor_set, cfg.anchor_count)
    else:
        anchor_records, rest = earliest_correction_anchors(records, cfg.anchor_fraction)
        anchor_samples = [(store.load_image(r), store.load_mask(r)) for r in anchor_records]
    train, held = split_records(rest, cfg.holdout_fraction, cfg.seed)
    base = base_checkpoint(store, cfg.from_checkpoint)
    held_samples = [(store.load_image(r), store.load_mask(r)) for r in held if r.image_path]
    before = score(base, held_samples, cfg.eval_max_clicks)
    anchor_before = score(base, anchor_samples, cfg.eval_max_clicks)

    # Seconds and a short random tag: two jobs finishing within one second must not share a version.
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.store) / "models" / f"ft-{stamp}"
    from ..checkpoint import read_metadata
    from ..preprocess import aligned_size

    base_meta = read_metadata(base) if base.endswith(".safetensors") else None
    short_side = base_meta.short_side if base_meta else 512
    # A grid-aligned base model keeps seeing 16k + 1 crops, or fine-tuning would undo its alignment.
    grid_align = bool(base_meta and base_meta.grid_align)
    crop_size = aligned_size(cfg.crop_size) if grid_align else cfg.crop_size
    original = None
    if cfg.original_config and cfg.original_share > 0:
        from ..training.run import build_datasets

        original, _ = build_datasets(TrainConfig.from_yaml(cfg.original_config, crop_size=crop_size,
                                                           grid_align=grid_align))
    dataset = build_finetune_dataset(store, train, crop_size, cfg.seed, original=original,
                                     original_share=cfg.original_share, short_side=short_side,
                                     click_prefixes=cfg.click_prefixes)
    train_cfg = TrainConfig(
        out_dir=str(out_dir), init_checkpoint=base, pretrained_backbone=False, crop_size=crop_size,
        grid_align=grid_align,
        batch_size=cfg.batch_size, steps=cfg.steps, lr=cfg.lr, constant_tail_fraction=0.0, val_every=0,
        checkpoint_every=max(1, min(cfg.steps // 4, 200)), log_every=max(1, min(10, cfg.steps)), seed=cfg.seed,
        version_prefix=f"ft-{stamp}", short_side=short_side,
        freeze_batchnorm=cfg.freeze_batchnorm, ema_decay=cfg.ema_decay, first_loss_weight=cfg.first_loss_weight,
        network_overrides={k: v for k, v in (("boundary_channels", cfg.boundary_channels), ("backbone", cfg.backbone))
                           if v is not None},
        trained_on=sorted(set((base_meta.provenance.get("trained_on", []) if base_meta else []) + ["corrections"])),
    )
    trainer = Trainer(train_cfg, dataset)
    from .l2sp import L2SP

    # L2-SP's reference is the base model, so it is taken before an interrupted run's weights come back
    l2sp = L2SP(trainer.network, trainer.optimizer, cfg.effective_l2sp_weight())
    if cfg.resume and trainer.load_state():
        print(f"resumed {out_dir} at step {trainer.step} of {cfg.steps}", flush=True)
    train_start, cpu_start = time.time(), time.process_time()
    trainer.fit(progress=progress)
    if trainer.step < cfg.steps:
        from ..errors import TrainingStopped

        # a half-trained model must not be gated, registered or promoted as this job's result
        raise TrainingStopped(f"stopped at step {trainer.step} of {cfg.steps}; the state is saved in {out_dir}"
                              + (": run the job again to continue" if cfg.resume else ""))
    train_seconds, train_cpu_seconds = time.time() - train_start, time.process_time() - cpu_start
    l2sp.remove()
    checkpoint = str(out_dir / "last.safetensors")
    version = trainer.metadata().version
    decision = gate(base, checkpoint, held_samples, anchor_samples, cfg.eval_max_clicks, cfg.anchor_tolerance,
                    base_scores={"heldout": before, "anchor": anchor_before})
    promoted = decision.promote
    after = decision.heldout_after
    extra = {"gate": decision.to_dict(), "anchor_records": len(anchor_records),
             "anchor_samples": len(anchor_samples), "anchor_set": cfg.anchor_set or "earliest corrections",
             "defence": {"original_config": cfg.original_config if original is not None else None,
                         "original_share": cfg.original_share if original is not None else 0.0,
                         "l2sp_weight": cfg.effective_l2sp_weight(), "weight_drift": l2sp.distance()},
             "train_seconds": round(train_seconds, 1), "train_cpu_seconds": round(train_cpu_seconds, 1),
             # what the process really ran with, not only what was asked
             "torch_threads": torch.get_num_threads(), "niceness": os.nice(0)}
    metrics = {"before": before, "after": after, "base": base, "train_records": len(train),
               "heldout_records": len(held), "anchor_before": decision.anchor_before,
               "anchor_after": decision.anchor_after, "gate_reasons": decision.reasons}
    store.register_model(version, checkpoint, metrics)
    if promoted:
        store.promote(version)
    result = FinetuneResult(version, checkpoint, base, promoted, before, after, len(train), len(held),
                            time.time() - start, extra)
    tmp = out_dir / "finetune.json.tmp"
    tmp.write_text(json.dumps(asdict(result), indent=2))
    os.replace(tmp, out_dir / "finetune.json")
    return result
