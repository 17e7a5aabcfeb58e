"""`fcanet finetune` and `fcanet models list|promote|rollback`."""

from __future__ import annotations


def register(sub) -> None:
    from .gate import DEFAULT_ANCHOR_COUNT, DEFAULT_ANCHOR_TOLERANCE
    from .job import DEFAULT_L2SP_WEIGHT

    p = sub.add_parser("finetune", help="fine-tune the served model on the corrections store")
    p.add_argument("--store", default="fcanet-data", help="corrections store: a directory or a postgresql:// URL")
    p.add_argument("--files-dir", help="files directory (needed with a PostgreSQL store)")
    p.add_argument("--from", dest="from_checkpoint", help="start from this checkpoint (default: the promoted model, else the bundled one)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--out-dir", help="where the new version goes (default: STORE/models/ft-<time>)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--crop-size", type=int, default=320)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--holdout", type=float, default=0.25, help="share of corrections (by image) held out for scoring")
    p.add_argument("--original-config", help="training config whose data is mixed in so the model does not forget")
    p.add_argument("--original-share", type=float, default=0.3)
    p.add_argument("--max-clicks", type=int, default=20)
    p.add_argument("--project", help="only this project's corrections")
    p.add_argument("--train-batchnorm", action="store_true",
                   help="update BatchNorm statistics on the fine-tuning batches (default: keep the base model's)")
    p.add_argument("--click-prefixes", action="store_true",
                   help="train every prefix of the recorded click sequences, not only the whole ones "
                        "(model/finetune/data.py RealClickDataset)")
    p.add_argument("--ema-decay", type=float, default=0.0, help="moving average of the weights (0: off)")
    p.add_argument("--anchor-set", metavar="NAME:ROOT",
                   help="the forgetting check's objects of the base domain, a dataset NAME:ROOT "
                        "(e.g. coco_mval:/data/COCO_MVal); default: the earliest corrections, held back")
    p.add_argument("--anchor-count", type=int, default=DEFAULT_ANCHOR_COUNT,
                   help="objects taken evenly from --anchor-set")
    p.add_argument("--anchor-fraction", type=float, default=0.15,
                   help="without --anchor-set: share of the earliest images held back as anchors")
    p.add_argument("--anchor-tolerance", type=float, default=DEFAULT_ANCHOR_TOLERANCE,
                   help="refuse a candidate whose anchor NoC@90 rises by more than this")
    p.add_argument("--l2sp", type=float, default=None, dest="l2sp_weight",
                   help="L2-SP weight keeping the weights near the base model's "
                        f"(default: 0 with --original-config, else {DEFAULT_L2SP_WEIGHT})")
    p.add_argument("--threads", type=int, default=0, help="torch threads of the job (0: torch's default)")
    p.add_argument("--nice", type=int, default=0, help="niceness added to the job's process (e.g. 10)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_finetune_cmd)

    m = sub.add_parser("models", help="model versions in the store: list, promote, rollback")
    m.add_argument("action", choices=["list", "promote", "rollback"])
    m.add_argument("version", nargs="?", help="the version to promote")
    m.add_argument("--store", default="fcanet-data")
    m.add_argument("--files-dir")
    m.set_defaults(func=run_models_cmd)


def _open(args):
    from ..corrections import open_store

    return open_store(args.store, files_dir=args.files_dir) if args.files_dir else open_store(args.store)


def run_finetune_cmd(args) -> int:
    import json
    from dataclasses import asdict

    from .job import FinetuneConfig, run_finetune

    cfg = FinetuneConfig(store=args.store, files_dir=args.files_dir, from_checkpoint=args.from_checkpoint,
                         steps=args.steps, out_dir=args.out_dir, batch_size=args.batch_size,
                         crop_size=args.crop_size, lr=args.lr, holdout_fraction=args.holdout,
                         original_config=args.original_config, original_share=args.original_share,
                         eval_max_clicks=args.max_clicks, project=args.project,
                         freeze_batchnorm=not args.train_batchnorm, ema_decay=args.ema_decay,
                         anchor_set=args.anchor_set, anchor_count=args.anchor_count,
                         anchor_fraction=args.anchor_fraction, anchor_tolerance=args.anchor_tolerance,
                         l2sp_weight=args.l2sp_weight, threads=args.threads, nice=args.nice,
                         click_prefixes=args.click_prefixes)
    result = run_finetune(cfg, progress=not args.no_progress)
    print(json.dumps(asdict(result), indent=2))
    return 0


def run_models_cmd(args) -> int:
    from ..errors import FcanetInputError

    store = _open(args)
    if args.action == "list":
        promoted = (store.promoted_model() or {}).get("version")
        for m in store.list_models():
            mark = "*" if m["version"] == promoted else " "
            print(f"{mark} {m['version']}  {m['path']}  {m.get('metrics', {}).get('after', {}).get('noc90', '')}")
        return 0
    if args.action == "promote":
        if not args.version:
            raise FcanetInputError("fcanet models promote needs a VERSION (see fcanet models list)")
        store.promote(args.version)
        print(f"promoted {args.version}")
        return 0
    print(f"rolled back to {store.rollback()}")
    return 0
