"""Does fine-tuning on corrections help on a domain the bundled model is weak on, without forgetting?

DAVIS345 stores its frames in video order (000-007 one video, 008-015 the next, ...) but not the
video names, so the split is by frame parity inside a contiguous block of videos: the even frames
of frames [start, start+count) become corrections (the robot user's clicks with the base model,
then the ground-truth mask, as an annotator would submit them), the odd frames of the same block
(the same videos, other frames, never a frame in both) are the score set. GrabCut is scored
before and after to show what was forgotten. The fine-tuned model is a demonstration only: it is
never bundled (DAVIS is a benchmark).

    python scripts/demo_finetune_davis.py --davis ../shared/datasets/DAVIS345 \
        --grabcut ../shared/datasets/GrabCut --count 120 --steps 300 --out out/ft-davis
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

# This checkout's `model`, whatever else is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--davis", required=True)
    ap.add_argument("--grabcut", required=True)
    ap.add_argument("--checkpoint", help="base model (default: the bundled one)")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, default=120, help="frames in the block (whole videos of about 7 frames)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--annotator-clicks", type=int, default=5)
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument("--grabcut-limit", type=int, help="score only the first N GrabCut images (smoke runs)")
    ap.add_argument("--original-config", default="model/training/configs/default.yaml")
    ap.add_argument("--out", default="out/ft-davis")
    args = ap.parse_args()

    from model import Predictor, default_checkpoint_path
    from model.corrections import open_store
    from model.evaluation.datasets import load_dataset
    from model.evaluation.scoring import robot_clicks, score_checkpoint
    from model.finetune.job import FinetuneConfig, run_finetune

    out = Path(args.out)
    if (out / "store").exists():
        shutil.rmtree(out / "store")
    out.mkdir(parents=True, exist_ok=True)
    base = args.checkpoint or str(default_checkpoint_path())
    block = load_dataset("davis", args.davis)[args.start: args.start + args.count]
    corrections, held = block[0::2], block[1::2]
    assert not {s.name for s in corrections} & {s.name for s in held}

    t0 = time.time()
    predictor = Predictor.from_checkpoint(base)
    store = open_store(out / "store")
    for s in corrections:
        image = s.load_image()
        store.add(source="gradio", image=image, mask=s.gt, project="davis-demo", annotation_id=None,
                  clicks=robot_clicks(predictor, s, args.annotator_clicks), author="robot")
    grabcut = load_dataset("grabcut", args.grabcut)[: args.grabcut_limit]
    from model.checkpoint import read_metadata

    report = {"command": "python " + " ".join(sys.argv), "base": base, "base_version": read_metadata(base).version, "davis_frames": [block[0].name, block[-1].name], "corrections": len(corrections),
              "score_frames": len(held), "steps": args.steps}
    report["davis_before"] = score_checkpoint(base, held, args.max_clicks, "DAVIS score set, before",
                                              output="default", progress=True)
    report["grabcut_before"] = score_checkpoint(base, grabcut, args.max_clicks, "GrabCut, before",
                                                output="default", progress=True)
    result = run_finetune(FinetuneConfig(store=str(out / "store"), from_checkpoint=base, steps=args.steps,
                                         out_dir=str(out / "model"), original_config=args.original_config,
                                         eval_max_clicks=args.max_clicks))
    report["finetune"] = {"version": result.version, "promoted": result.promoted,
                          "internal_heldout_before": result.before, "internal_heldout_after": result.after,
                          "gate": result.extra.get("gate"), "defence": result.extra.get("defence"),
                          "seconds": round(result.seconds, 1)}
    report["davis_after"] = score_checkpoint(result.checkpoint, held, args.max_clicks, "DAVIS score set, after",
                                             output="default", progress=True)
    report["grabcut_after"] = score_checkpoint(result.checkpoint, grabcut, args.max_clicks, "GrabCut, after",
                                               output="default", progress=True)
    report["seconds"] = round(time.time() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    rows = [("DAVIS score set (odd frames)", "davis"), ("GrabCut (forgetting check)", "grabcut")]
    lines = [f"# Fine-tuning on DAVIS345, split by video: {report['corrections']} corrections, {args.steps} steps",
             "", f"Base {report['base_version']}; frames {block[0].name}-{block[-1].name}; the predictor's default "
             f"output; gate: {'promoted' if result.promoted else 'refused'}; job {report['finetune']['seconds']} s.",
             "", f"Command: `{report['command']}`", "",
             "| set | NoC@85 before | NoC@85 after | NoC@90 before | NoC@90 after | mIoU@1 before | mIoU@1 after |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for title, key in rows:
        b, a = report[f"{key}_before"], report[f"{key}_after"]
        lines.append(f"| {title} | {b['noc85']:.2f} | {a['noc85']:.2f} | {b['noc90']:.2f} | {a['noc90']:.2f} | "
                     f"{b['miou_per_click'][0]:.3f} | {a['miou_per_click'][0]:.3f} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
