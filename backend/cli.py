"""`fcanet serve`: the Label Studio ML backend (optionally with the Gradio demo at /demo)."""

from __future__ import annotations

import argparse

from model.predictor_flags import add_predictor_arguments


def register(sub) -> None:
    p = sub.add_parser(
        "serve", help="run the Label Studio ML backend",
        description="Serve FCA-Net to Label Studio (GET /health, POST /setup, /predict, /webhook). "
                    "Label Studio settings come from LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY; "
                    "see the README section Label Studio in five steps.",
    )
    p.add_argument("--host", help="interface to listen on (default $FCANET_HOST or 127.0.0.1; 0.0.0.0 in Docker)")
    p.add_argument("--port", type=int, help="port (default $FCANET_PORT or 9090)")
    p.add_argument("--checkpoint", help="model checkpoint (default: the store's promoted model, else the bundled one)")
    p.add_argument("--data-dir", help="corrections store and files (default $FCANET_DATA_DIR or ./fcanet-data)")
    p.add_argument("--store", help="postgresql:// URL for the records (files stay under --data-dir)")
    p.add_argument("--label-studio-url", help="default $LABEL_STUDIO_URL")
    p.add_argument("--allowed-image-hosts", help="comma-separated extra image hosts (default $FCANET_ALLOWED_IMAGE_HOSTS)")
    # The same output flags as predict / evaluate / benchmark / demo; --mode (or $FCANET_MODE) names one
    # of the output modes (`fcanet benchmark --modes all` times them side by side).
    add_predictor_arguments(p)
    p.add_argument("--watch-promoted", type=float, metavar="SECONDS",
                   help="how often to look for a newly promoted model in the store (0: never; default 10)")
    p.add_argument("--finetune-steps", type=int,
                   help="steps of the fine-tuning job START_TRAINING starts (0: only record it; default 200)")
    p.add_argument("--train-every", type=int, metavar="N",
                   help="also start a fine-tuning job after every N new annotations (default $FCANET_TRAIN_EVERY or 0: off)")
    p.add_argument("--max-body-bytes", type=int,
                   help="largest request body, 413 past it (default $FCANET_MAX_BODY_BYTES or 268435456)")
    p.add_argument("--predict-workers", type=int,
                   help="predictions running at once (default $FCANET_PREDICT_WORKERS or the number of CPU cores)")
    p.add_argument("--predict-queue", type=int,
                   help="predictions waiting for a worker; past it 503 + Retry-After (default $FCANET_PREDICT_QUEUE or 16)")
    p.add_argument("--fast-when-waiting", type=int, metavar="N",
                   help="skip the graph cut for a prediction that starts while N or more others wait "
                        "(default $FCANET_FAST_WHEN_WAITING or 1; 0: always refine)")
    p.add_argument("--with-demo", action="store_true", help="also serve the Gradio demo at /demo")
    p.add_argument("--log-level", help="default $LOG_LEVEL or INFO")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace, env=None):
    from .config import BackendConfig

    hosts = None
    if args.allowed_image_hosts is not None:
        hosts = tuple(h.strip().lower() for h in args.allowed_image_hosts.split(",") if h.strip())
    return BackendConfig.from_env(
        env, host=args.host, port=args.port, checkpoint=args.checkpoint, data_dir=args.data_dir,
        store=args.store, label_studio_url=args.label_studio_url, allowed_image_hosts=hosts,
        predictor_kwargs=_predictor_kwargs(args, env), watch_promoted_s=args.watch_promoted,
        finetune_steps=args.finetune_steps,
        train_every=args.train_every, max_body_bytes=args.max_body_bytes,
        predict_workers=args.predict_workers, predict_queue=args.predict_queue,
        fast_when_waiting=args.fast_when_waiting,
        with_demo=True if args.with_demo else None, log_level=args.log_level,
    )


def _predictor_kwargs(args: argparse.Namespace, env) -> dict:
    """The flags' Predictor options, with $FCANET_MODE as the mode when --mode is not given."""
    import os

    from model.predictor_flags import predictor_options

    env = os.environ if env is None else env
    return predictor_options(args, args.mode or env.get("FCANET_MODE") or None)


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from .app import create_app

    config = config_from_args(args)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level.lower(),
                timeout_keep_alive=30)
    return 0
