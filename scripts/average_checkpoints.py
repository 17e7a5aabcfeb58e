"""Write the weighted average of checkpoints of one network (model/weight_average.py).

    python scripts/average_checkpoints.py A.safetensors B.safetensors [--weights 0.5,0.5] \
        --version NAME --out SOUP.safetensors

The result is a candidate like any other: score it with `fcanet evaluate --checkpoint SOUP...`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--weights", help="comma-separated, one per checkpoint (default: uniform)")
    ap.add_argument("--version", required=True, help="the averaged checkpoint's version")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from model.checkpoint import save_checkpoint
    from model.errors import CheckpointError
    from model.weight_average import average_checkpoints

    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    except ValueError:
        ap.error(f"--weights must be comma-separated numbers, not {args.weights!r}")
    try:
        network, metadata = average_checkpoints(args.checkpoints, weights, version=args.version)
    except CheckpointError as exc:
        ap.error(str(exc))
    save_checkpoint(args.out, network, metadata)
    print(f"{args.out}: {metadata.version} = " + " + ".join(f"{a['weight']:g} x {a['version']}"
                                                             for a in metadata.provenance["averaged"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
