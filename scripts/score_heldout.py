"""A checkpoint's figures on a training config's fixed held-out split: the trainer's own validation.

    python scripts/score_heldout.py --config model/training/configs/continue-c16.yaml CKPT [CKPT ...]

Builds only the held-out source of the config (its `holdout_source`, split with `holdout_fraction`
and `holdout_seed`), takes its first `val_samples` objects and scores each checkpoint's network
alone with the robot user (`model/training/validation.py`): one JSON line per checkpoint. Used to
score a screen stopped before its last step, or a campaign's snapshots, on the same objects as the
training log's validation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("checkpoints", nargs="+")
    args = ap.parse_args()
    from model.checkpoint import load_checkpoint
    from model.training.config import TrainConfig
    from model.training.run import make_validator
    from model.training.sources import build_source, split_holdout

    cfg = TrainConfig.from_yaml(args.config)
    spec = {k: v for k, v in cfg.sources[cfg.holdout_source].items() if k != "weight"}
    seed = cfg.seed if cfg.holdout_seed is None else cfg.holdout_seed
    _, held = split_holdout(build_source(spec), cfg.holdout_fraction, seed)
    validate = make_validator(cfg, held)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    for path in args.checkpoints:
        network, meta = load_checkpoint(path)
        result = validate(network.eval(), meta)
        print(json.dumps({"checkpoint": path, "version": meta.version, **result}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
