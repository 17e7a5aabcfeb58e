"""`fcanet corrections list` and `fcanet corrections export --format coco OUT.json`."""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_STORE = "fcanet-data"


def default_store() -> str:
    """FCANET_STORE (a directory or postgresql:// URL), else FCANET_DATA_DIR, else ./fcanet-data."""
    return os.environ.get("FCANET_STORE") or os.environ.get("FCANET_DATA_DIR") or DEFAULT_STORE


def _add_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, metavar="DIR|URL",
                   help="corrections store: a data directory or a postgresql:// URL "
                        f"(default: $FCANET_STORE, $FCANET_DATA_DIR or ./{DEFAULT_STORE})")
    p.add_argument("--files-dir", help="images and masks folder (required with a PostgreSQL store)")
    p.add_argument("--source", help="only corrections from this source (label_studio, gradio, ...)")
    p.add_argument("--project", help="only corrections of this project")
    p.add_argument("--labeler", help="only corrections by this labeler (Label Studio's completed_by: email or id)")
    p.add_argument("--model-version", help="only corrections whose mask this model version drew")
    p.add_argument("--min-clicks", type=int, help="only corrections that took at least this many clicks")
    p.add_argument("--max-clicks", type=int, help="only corrections that took at most this many clicks")
    p.add_argument("--min-seconds", type=float, help="only annotations that took at least this long (lead time)")
    p.add_argument("--max-seconds", type=float, help="only annotations that took at most this long (lead time)")


def _filters(args) -> dict:
    return {"source": args.source, "project": args.project, "labeler": args.labeler,
            "model_version": args.model_version, "min_clicks": args.min_clicks, "max_clicks": args.max_clicks,
            "min_seconds": args.min_seconds, "max_seconds": args.max_seconds}


def register(sub) -> None:
    p = sub.add_parser("corrections", help="the corrections store: list or export what labelers fixed")
    actions = p.add_subparsers(dest="corrections_action", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    lst = actions.add_parser("list", help="one line per stored correction")
    _add_store_args(lst)
    lst.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    lst.set_defaults(func=run_list)

    exp = actions.add_parser("export", help="write the corrections as a COCO file (pycocotools RLE masks)")
    _add_store_args(exp)
    exp.add_argument("--format", choices=["coco"], default="coco", help="export format (only coco)")
    exp.add_argument("out", metavar="OUT.json", help="the file to write")
    exp.set_defaults(func=run_export)


def _open(args):
    from . import open_store

    location = args.store or default_store()
    if not location.startswith(("postgresql://", "postgres://")) and not os.path.isdir(location):
        from .records import StoreError

        raise StoreError(f"no corrections store at {location} (give --store DIR|URL)")
    return open_store(location, files_dir=args.files_dir)


def run_list(args) -> int:
    import json

    store = _open(args)
    records = store.list(**_filters(args))
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=1))
        return 0
    print(f"{'id':32}  {'source':12}  {'project':8}  {'task':8}  {'annotation':10}  {'size':>9}  "
          f"{'clicks':>6}  {'dropped':>7}  {'seconds':>7}  {'labeler':16}  {'model':24}  {'image':6}  labels")
    for r in records:
        clicks = len(r.clicks) if r.click_count is None else r.click_count
        seconds = "-" if r.lead_time_s is None else f"{r.lead_time_s:.1f}"
        print(f"{r.id:32}  {r.source:12}  {r.project or '-':8}  {r.task_id or '-':8}  {r.annotation_id or '-':10}  "
              f"{f'{r.width}x{r.height}':>9}  {clicks:>6}  {len(r.dropped_clicks):>7}  {seconds:>7}  "
              f"{r.author or '-':16}  {r.model_version or '-':24}  {'stored' if r.image_path else 'ref':6}  "
              f"{','.join(r.labels) or '-'}")
    print(f"{len(records)} correction(s) in {store!r}")
    return 0


def run_export(args) -> int:
    from .coco import export_coco

    store = _open(args)
    skipped: list[tuple[str, str]] = []
    counts = export_coco(store, args.out, skipped=skipped, **_filters(args))
    print(f"wrote {args.out}: {counts['annotations']} annotation(s) on {counts['images']} image(s), "
          f"{counts['categories']} categor{'y' if counts['categories'] == 1 else 'ies'}")
    if skipped:
        print(f"skipped {len(skipped)} correction(s) that cannot be exported:", file=sys.stderr)
        for record_id, reason in skipped:
            print(f"  {record_id}: {reason}", file=sys.stderr)
    return 0
