"""`fcanet train --config FILE [--resume]`: one training run (also under torchrun).
`fcanet pack --config FILE --out P.npz`: its training objects in one small file (`pack.py`).
`fcanet gpu-campaign ...`: the prepared GPU training window (`gpu_campaign.py`)."""

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

    k = sub.add_parser("pack", help="pack a training config's objects into one small .npz (for a GPU machine)")
    k.add_argument("--config", required=True, help="YAML training config whose sources are packed")
    k.add_argument("--out", required=True, help="the .npz to write")
    k.add_argument("--short-side", type=int, help="largest short side kept (default: the config's resize_short_side)")
    k.add_argument("--encoding", choices=["webp", "jpg"], default="webp", help="image encoding (default webp)")
    k.add_argument("--quality", type=int, default=75, help="image quality 1-100 (default 75)")
    k.add_argument("--max-mib", type=float, default=45.0, help="refuse to write a larger file (default 45)")
    k.add_argument("--min-quality", type=int,
                   help="rather than refuse, encode the images again at lower qualities down to this one")
    k.set_defaults(func=run_pack)

    from . import gpu_campaign

    gpu_campaign.register(sub)


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
    trainer.close()
    return 0


def run_pack(args) -> int:
    from ..errors import FcanetInputError
    from .config import TrainConfig
    from .pack import pack_config

    try:
        cfg = TrainConfig.from_yaml(args.config)
        summary = pack_config(cfg, args.out, short_side=args.short_side, quality=args.quality,
                              encoding=args.encoding, min_quality=args.min_quality,
                              max_mib=args.max_mib, config_name=str(args.config),
                              progress=lambda line: print(line, flush=True))
    except ValueError as exc:
        raise FcanetInputError(str(exc)) from None
    for i, part in enumerate(summary.parts):
        print(f"part {i}: {part['type']} weight {part['weight']:g}: {part['images']} images, {part['objects']} objects")
    print(f"wrote {summary.path}: {summary.mib:.1f} MiB, {summary.images} images (quality {summary.quality}), "
          f"{summary.objects} objects, "
          f"{summary.layers} mask layers, {summary.seconds:.0f} s")
    return 0
