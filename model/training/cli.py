"""`fcanet train --config FILE [--resume]`: one training run (also under torchrun)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("train", help="train FCA-Net (click simulation, iterative clicks, click loss)")
    p.add_argument("--config", required=True, help="YAML training config (see model/training/configs/)")
    p.add_argument("--resume", action="store_true", help="continue from OUT_DIR/state.pt if present")
    p.add_argument("--out-dir", help="override the config's out_dir")
    p.add_argument("--max-steps", type=int, help="stop after this many more steps (the schedule still spans `steps`)")
    p.add_argument("--max-minutes", type=float, help="stop (and save) after this many minutes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from .config import TrainConfig
    from .run import build_trainer

    cfg = TrainConfig.from_yaml(args.config, out_dir=args.out_dir)
    trainer = build_trainer(cfg)
    if args.resume and trainer.load_state():
        print(f"resumed {cfg.out_dir} at step {trainer.step}")
    elif (trainer.out / "state.pt").exists() and not args.resume:
        from ..errors import FcanetInputError

        raise FcanetInputError(f"{cfg.out_dir} already holds a run: pass --resume or choose another --out-dir")
    trainer.fit(max_steps=args.max_steps,
                max_seconds=args.max_minutes * 60 if args.max_minutes else None,
                progress=not args.no_progress)
    trainer.ctx.close()
    return 0
