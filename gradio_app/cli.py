"""`fcanet demo`: the standalone browser app."""

from __future__ import annotations

from model.predictor_flags import add_predictor_arguments, predictor_from_args


def register(sub) -> None:
    p = sub.add_parser("demo", help="the Gradio app: click, see the mask, fix it, download it")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--checkpoint", help="checkpoint (default: the bundled model)")
    add_predictor_arguments(p)
    p.add_argument("--store", default="fcanet-data", help="corrections store (directory or postgresql:// URL)")
    p.set_defaults(func=run)


def run(args) -> int:
    from .app import KEYBOARD_JS, build_demo

    predictor = predictor_from_args(args)
    store = None
    try:
        from model.corrections import open_store

        store = open_store(args.store)
    except ImportError:
        pass
    demo = build_demo(predictor, store)
    print(f"fcanet demo: model {predictor.model_version} at http://{args.host}:{args.port}/")
    demo.launch(server_name=args.host, server_port=args.port, js=KEYBOARD_JS)
    return 0
