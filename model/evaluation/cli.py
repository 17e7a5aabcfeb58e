"""`fcanet evaluate`, `fcanet plot`, `fcanet compare`, `fcanet benchmark`."""

from __future__ import annotations

from ..predictor_flags import add_predictor_arguments, options_identity, predictor_from_args


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="robot-user NoC evaluation on a benchmark dataset")
    p.add_argument("--dataset", required=True, help="grabcut, berkeley, davis, coco_mval, pascal_voc or sbd")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--checkpoint", help="checkpoint for --method fcanet (default: the bundled model)")
    p.add_argument("--method", choices=["fcanet", "grabcut"], default="fcanet")
    p.add_argument("--max-clicks", type=int, default=20)
    p.add_argument("--no-sis", action="store_true")
    p.add_argument("--sis-connectivity", type=int, choices=[4, 8], default=8)
    add_predictor_arguments(p)
    p.add_argument("--limit", type=int, help="only the first N samples")
    p.add_argument("--early-stop", action="store_true",
                   help="stop a sample at IoU 0.90 (same NoC; later mIoU values carried forward)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true",
                   help="continue a stopped run of the same evaluation from OUT/progress.jsonl")
    p.set_defaults(func=run_evaluate)

    q = sub.add_parser("plot", help="mIoU-vs-clicks curves of one or more evaluation folders")
    q.add_argument("results", nargs="+")
    q.add_argument("--out", required=True)
    q.add_argument("--title")
    q.set_defaults(func=run_plot)

    c = sub.add_parser("compare", help="two evaluation folders of one benchmark, sample by sample "
                                       "(better/worse counts, sign test, bootstrap interval)")
    c.add_argument("base", help="evaluation folder of the model to beat")
    c.add_argument("candidate", help="evaluation folder of the candidate, same dataset and samples")
    c.add_argument("--json", help="also write the comparison to this JSON file")
    c.set_defaults(func=run_compare)

    b = sub.add_parser("benchmark", help="per-click latency and memory of the predictor")
    b.add_argument("--checkpoint")
    b.add_argument("--clicks", type=int, default=10)
    b.add_argument("--runs", type=int, default=3)
    add_predictor_arguments(b)
    b.add_argument("--modes", help="comma-separated output modes to time side by side, interleaved, with ratios "
                                   "against the first (network, edge, grabcut-fast, grabcut, default; 'all': "
                                   "every one in that order); the other flags apply to each")
    b.add_argument("--precisions", help="with --modes: time each mode at each of these comma-separated precisions "
                                        "(fp32, bf16, auto), rows named 'MODE PRECISION'")
    b.add_argument("--json", required=True)
    b.add_argument("--markdown", help="also write the modes' table to this file")
    b.set_defaults(func=run_benchmark_cmd)


def run_evaluate(args) -> int:
    from pathlib import Path

    from ..errors import FcanetInputError
    from .datasets import load_dataset
    from .loop import evaluate_samples
    from .plot import plot_runs
    from .report import metrics_dict, write_report

    try:
        samples = load_dataset(args.dataset, args.data_dir)
    except ValueError as exc:
        raise FcanetInputError(str(exc)) from None
    if args.limit:
        samples = samples[: args.limit]
    if args.method == "grabcut":
        from .grabcut_baseline import GrabCutPredictor

        predictor, checkpoint = GrabCutPredictor(), None
    else:
        from ..predictor import default_checkpoint_path

        predictor = predictor_from_args(args, sis_connectivity=args.sis_connectivity)
        checkpoint = str(args.checkpoint or default_checkpoint_path())
    sis = not args.no_sis
    from ..checkpoint import file_digest
    from .journal import EvaluationJournal

    identity = {"dataset": args.dataset, "samples": [s.name for s in samples][:1] + [len(samples)],
                "method": args.method, "checkpoint_sha256": file_digest(checkpoint), "sis": sis,
                "sis_connectivity": args.sis_connectivity, "max_clicks": args.max_clicks,
                "short_side": args.short_side, "early_stop": bool(args.early_stop)}
    identity.update(options_identity(predictor))
    journal = EvaluationJournal(Path(args.out) / "progress.jsonl", identity, resume=args.resume)
    result = evaluate_samples(predictor, samples, max_clicks=args.max_clicks, sis=sis,
                              early_stop=args.early_stop, desc=f"{args.method} on {args.dataset}", journal=journal)
    metrics = metrics_dict(result, dataset=args.dataset, method=args.method, checkpoint=checkpoint, sis=sis,
                           model=getattr(predictor, "metadata", {}))
    metrics["early_stop"] = bool(args.early_stop)
    write_report(args.out, result, metrics)
    plot_runs([args.out], Path(args.out) / "miou_curve.png")
    print(Path(args.out, "report.md").read_text())
    return 0


def run_plot(args) -> int:
    from .plot import plot_runs

    plot_runs(args.results, args.out, args.title)
    print(args.out)
    return 0


def run_compare(args) -> int:
    import json

    from ..errors import FcanetInputError
    from .paired import compare_folders, comparison_dict, comparison_markdown

    try:
        rows = compare_folders(args.base, args.candidate)
    except ValueError as exc:
        raise FcanetInputError(str(exc)) from None
    print(comparison_markdown(args.base, args.candidate, rows), end="")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(comparison_dict(args.base, args.candidate, rows), fh, indent=2)
    return 0


def run_benchmark_cmd(args) -> int:
    import json

    from ..errors import FcanetInputError
    from ..predictor_flags import OUTPUT_MODES, PRECISIONS
    from .benchmark import modes_table, run_benchmark, run_modes

    if args.clicks < 1 or args.runs < 1:
        raise FcanetInputError("--clicks and --runs must be at least 1")
    if args.modes:
        names = list(OUTPUT_MODES) if args.modes.strip() == "all" else [
            m.strip() for m in args.modes.split(",") if m.strip()]
        unknown = [m for m in names if m not in OUTPUT_MODES]
        if unknown or not names:
            raise FcanetInputError(f"unknown output mode(s) {unknown}: choose from {', '.join(OUTPUT_MODES)} or all")
        if len(set(names)) != len(names):
            raise FcanetInputError(f"--modes names a mode twice: {args.modes}")
        precisions = [p.strip() for p in (args.precisions or "").split(",") if p.strip()]
        bad = [p for p in precisions if p not in PRECISIONS]
        if bad:
            raise FcanetInputError(f"unknown precision(s) {bad}: choose from {', '.join(PRECISIONS)}")
        if precisions:
            predictors = {f"{name} {precision}": predictor_from_args(args, mode=name, precision=precision)
                          for name in names for precision in precisions}
        else:
            predictors = {name: predictor_from_args(args, mode=name) for name in names}
        result = run_modes(predictors, clicks=args.clicks, runs=args.runs)
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
        table = modes_table(result)
        if args.markdown:
            with open(args.markdown, "w", encoding="utf-8") as fh:
                fh.write(table + "\n")
        print(table)
        return 0
    predictor = predictor_from_args(args)
    result = run_benchmark(predictor, clicks=args.clicks, runs=args.runs)
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    print(json.dumps({k: result[k] for k in ("p50_ms", "p95_ms", "peak_rss_mb", "threads", "input")}))
    return 0
