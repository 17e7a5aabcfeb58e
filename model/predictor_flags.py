"""The command-line flags that choose how a Predictor runs, shared by every CLI that predicts
(`fcanet predict`, `evaluate`, `benchmark`), and the Predictor they describe.

Flags: --short-side, --grid-align/--no-grid-align, --zoom-in, --edge-refine/--no-edge-refine
(+ radius, eps), --graphcut-refine/--no-graphcut-refine (+ weight, iterations, max side, margin, full resolution, cut side). Defaults are the Predictor's.
"""

from __future__ import annotations

import argparse
from typing import Any

from .edge_refine import EdgeRefineConfig
from .errors import FcanetInputError
from .graphcut_refine import GraphCutRefineConfig


def add_predictor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--short-side", type=int, default=None,
                        help="working resolution (default: the checkpoint's, 512)")
    parser.add_argument("--grid-align", action=argparse.BooleanOptionalAction, default=None,
                        help="pad the working image to 16k+1 pixels (model/preprocess.py grid_padding); "
                             "default: as the checkpoint was trained")
    parser.add_argument("--zoom-in", action="store_true",
                        help="second pass on a crop around the object (not in the paper; model/zoom_in.py)")
    edge = EdgeRefineConfig()
    parser.add_argument("--edge-refine", action=argparse.BooleanOptionalAction, default=True,
                        help="guided filter on the probability (on by default; not in the paper; "
                             "model/edge_refine.py)")
    parser.add_argument("--edge-refine-radius", type=int, default=edge.radius,
                        help=f"its window radius in working pixels (default {edge.radius})")
    parser.add_argument("--edge-refine-eps", type=float, default=edge.eps,
                        help=f"its regularisation (default {edge.eps})")
    graphcut = GraphCutRefineConfig()
    parser.add_argument("--graphcut-refine", action=argparse.BooleanOptionalAction, default=True,
                        help="blend in OpenCV's GrabCut seeded by the network's mask (on by default; not "
                             "in the paper: --no-edge-refine --no-graphcut-refine give the paper's output; "
                             "model/graphcut_refine.py)")
    parser.add_argument("--graphcut-weight", type=float, default=graphcut.weight,
                        help=f"GrabCut's share in the blended probability (default {graphcut.weight})")
    parser.add_argument("--graphcut-iterations", type=int, default=graphcut.iterations,
                        help=f"GrabCut rounds (default {graphcut.iterations})")
    parser.add_argument("--graphcut-max-side", type=int, default=graphcut.max_side,
                        help=f"the region is shrunk to this long side first (default {graphcut.max_side}; "
                             "320 with 3 iterations is slower and more accurate)")
    parser.add_argument("--graphcut-margin", type=float, default=graphcut.margin,
                        help=f"share of the mask's box added on each side (default {graphcut.margin})")
    parser.add_argument("--graphcut-full-resolution", action=argparse.BooleanOptionalAction,
                        default=graphcut.full_resolution,
                        help="after learning the colour models on the shrunk region, cut once more at the "
                             "working size so that the boundary follows the image's own pixels (default on; "
                             "--no-graphcut-full-resolution is faster and coarser)")
    parser.add_argument("--graphcut-cut-side", type=int, default=graphcut.cut_side,
                        help=f"that cut works at most this many pixels on the region's long side "
                             f"(default {graphcut.cut_side}; 0: the working size, about 1 s a click)")


def predictor_options(args: argparse.Namespace) -> dict[str, Any]:
    """Predictor keyword arguments from those flags; a bad value is a FcanetInputError."""
    try:
        edge = (EdgeRefineConfig(radius=args.edge_refine_radius, eps=args.edge_refine_eps)
                if args.edge_refine else False)
        graphcut = (GraphCutRefineConfig(weight=args.graphcut_weight, iterations=args.graphcut_iterations,
                                         max_side=args.graphcut_max_side, margin=args.graphcut_margin,
                                         full_resolution=args.graphcut_full_resolution,
                                         cut_side=args.graphcut_cut_side)
                    if args.graphcut_refine else False)
    except ValueError as exc:
        raise FcanetInputError(str(exc)) from None
    return {"short_side": args.short_side, "grid_align": args.grid_align, "zoom_in": args.zoom_in,
            "edge_refine": edge, "graphcut_refine": graphcut}


def predictor_from_args(args: argparse.Namespace, **extra: Any):
    """The Predictor for args.checkpoint (None: the bundled model) run as the flags say."""
    from .predictor import Predictor

    return Predictor.from_checkpoint(args.checkpoint, **predictor_options(args), **extra)


#: Post-processing options a journal records only when they are on, so that journals written
#: before an option existed still resume.
OPTIONAL_IDENTITY = ("zoom_in", "edge_refine", "graphcut_refine", "grid_align")


def options_identity(predictor: Any) -> dict[str, Any]:
    """{option: its setting} for each of OPTIONAL_IDENTITY that is on in the predictor's metadata."""
    metadata = getattr(predictor, "metadata", {})
    return {key: metadata[key] for key in OPTIONAL_IDENTITY if metadata.get(key)}
