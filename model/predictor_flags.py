"""The command-line flags that choose how a Predictor runs, shared by every CLI that predicts
(`fcanet predict`, `evaluate`, `benchmark`), and the Predictor they describe.

Flags: --short-side, --grid-align/--no-grid-align, --zoom-in, --edge-refine/--no-edge-refine
(+ radius, eps), --band-cut/--no-band-cut (+ band, colour, smoothness; the default refinement),
--graphcut-refine (GrabCut instead; + weight, iterations, max side, margin, full resolution, cut side),
and --mode, a named combination of them (`OUTPUT_MODES`). Defaults are the Predictor's.
"""

from __future__ import annotations

import argparse
from typing import Any

from .errors import FcanetInputError
from .inference_precision import PRECISIONS
from .refine_config import BandCutConfig, EdgeRefineConfig, GraphCutRefineConfig


#: Named output modes: the flags each one stands for (applied over the command line's own).
OUTPUT_MODES: dict[str, dict[str, Any]] = {
    # The paper's output: the network alone.
    "network": {"edge_refine": False, "band_cut": False, "graphcut_refine": False},
    # The guided filter only.
    "edge": {"edge_refine": True, "band_cut": False, "graphcut_refine": False},
    # GrabCut on the shrunk region only (--no-graphcut-full-resolution).
    "grabcut-fast": {"edge_refine": True, "band_cut": False, "graphcut_refine": True,
                     "graphcut_full_resolution": False},
    # The default before the band cut: GrabCut with its last cut at the working size.
    "grabcut": {"edge_refine": True, "band_cut": False, "graphcut_refine": True, "graphcut_full_resolution": True},
    # The default: the guided filter, then the band cut.
    "default": {"edge_refine": True, "band_cut": True, "graphcut_refine": False},
}


def add_predictor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--short-side", type=int, default=None,
                        help="working resolution (default: the checkpoint's, 512)")
    parser.add_argument("--grid-align", action=argparse.BooleanOptionalAction, default=None,
                        help="pad the working image to 16k+1 pixels (model/preprocess.py grid_padding); "
                             "default: as the checkpoint was trained")
    parser.add_argument("--zoom-in", action="store_true",
                        help="second pass on a crop around the object (not in the paper; model/zoom_in.py)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="the network's arithmetic: fp32 (the reference), bf16 (autocast), or auto "
                             "(default: bf16 on CPUs that compute it natively, else fp32; "
                             "model/inference_precision.py)")
    edge = EdgeRefineConfig()
    parser.add_argument("--edge-refine", action=argparse.BooleanOptionalAction, default=True,
                        help="guided filter on the probability (on by default; not in the paper; "
                             "model/edge_refine.py)")
    parser.add_argument("--edge-refine-radius", type=int, default=edge.radius,
                        help=f"its window radius in working pixels (default {edge.radius})")
    parser.add_argument("--edge-refine-eps", type=float, default=edge.eps,
                        help=f"its regularisation (default {edge.eps})")
    parser.add_argument("--mode", choices=sorted(OUTPUT_MODES),
                        help="a named output mode, overriding the refinement switches: network (the paper's), "
                             "edge, grabcut-fast, grabcut (the default before the band cut), default")
    band = BandCutConfig()
    parser.add_argument("--band-cut", action=argparse.BooleanOptionalAction, default=None,
                        help="min-cut over a band around the network's boundary (on by default unless "
                             "--graphcut-refine; not in the paper; model/band_cut.py)")
    parser.add_argument("--band-cut-band", type=float, default=band.band,
                        help=f"the band's half-width, share of the mask's equivalent radius (default {band.band})")
    parser.add_argument("--band-cut-colour", type=float, default=band.colour,
                        help=f"weight of its colour histograms (default {band.colour})")
    parser.add_argument("--band-cut-smoothness", type=float, default=band.smoothness,
                        help=f"weight of its contrast-sensitive pairwise term (default {band.smoothness})")
    parser.add_argument("--band-cut-rounds", type=int, default=band.rounds,
                        help=f"at most this many cuts, each around the last one's growth (default {band.rounds}; "
                             "1 is faster and grows the object at most one band past the network's mask)")
    graphcut = GraphCutRefineConfig()
    parser.add_argument("--graphcut-refine", action=argparse.BooleanOptionalAction, default=False,
                        help="blend in OpenCV's GrabCut seeded by the network's mask instead of the band cut "
                             "(the default before it; not in the paper: --no-edge-refine --no-band-cut give "
                             "the paper's output; model/graphcut_refine.py)")
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


def predictor_options(args: argparse.Namespace, mode: str | None = None) -> dict[str, Any]:
    """Predictor keyword arguments from those flags (with `mode`, or else --mode, applied over
    them); a bad value is a FcanetInputError."""
    mode = mode or getattr(args, "mode", None)
    if mode is not None:
        if mode not in OUTPUT_MODES:
            raise FcanetInputError(f"unknown output mode {mode!r}: choose from {', '.join(OUTPUT_MODES)}")
        args = argparse.Namespace(**{**vars(args), **OUTPUT_MODES[mode]})
    band_on = getattr(args, "band_cut", None)
    if band_on is None:
        band_on = not args.graphcut_refine
    if band_on and args.graphcut_refine:
        raise FcanetInputError("choose one graph-cut refinement: --band-cut or --graphcut-refine")
    try:
        edge = (EdgeRefineConfig(radius=args.edge_refine_radius, eps=args.edge_refine_eps)
                if args.edge_refine else False)
        graphcut = (GraphCutRefineConfig(weight=args.graphcut_weight, iterations=args.graphcut_iterations,
                                         max_side=args.graphcut_max_side, margin=args.graphcut_margin,
                                         full_resolution=args.graphcut_full_resolution,
                                         cut_side=args.graphcut_cut_side)
                    if args.graphcut_refine else False)
        band = (BandCutConfig(band=args.band_cut_band, colour=args.band_cut_colour,
                              smoothness=args.band_cut_smoothness,
                              rounds=getattr(args, "band_cut_rounds", BandCutConfig().rounds)) if band_on else False)
    except ValueError as exc:
        raise FcanetInputError(str(exc)) from None
    return {"short_side": args.short_side, "grid_align": args.grid_align, "zoom_in": args.zoom_in,
            "edge_refine": edge, "graphcut_refine": graphcut, "band_cut": band,
            "precision": getattr(args, "precision", "auto")}


def options_for_mode(mode: str | None = None) -> dict[str, Any]:
    """Predictor keyword arguments of an output mode (None: the default) with every other flag at
    its default: what a server configured by one variable (`FCANET_MODE`) runs."""
    parser = argparse.ArgumentParser(add_help=False)
    add_predictor_arguments(parser)
    return predictor_options(parser.parse_args([]), mode)


def predictor_from_args(args: argparse.Namespace, mode: str | None = None, **extra: Any):
    """The Predictor for args.checkpoint (None: the bundled model) run as the flags (and `mode`) say."""
    from .predictor import Predictor

    return Predictor.from_checkpoint(args.checkpoint, **{**predictor_options(args, mode), **extra})


#: Post-processing options a journal records only when they are on, so that journals written
#: before an option existed still resume.
OPTIONAL_IDENTITY = ("zoom_in", "edge_refine", "graphcut_refine", "band_cut", "grid_align")


def options_identity(predictor: Any) -> dict[str, Any]:
    """{option: its setting} for each of OPTIONAL_IDENTITY that is on in the predictor's metadata,
    and the precision when it is not float32 (journals written before bf16 existed ran in float32)."""
    metadata = getattr(predictor, "metadata", {})
    identity = {key: metadata[key] for key in OPTIONAL_IDENTITY if metadata.get(key)}
    if metadata.get("precision", "fp32") != "fp32":
        identity["precision"] = metadata["precision"]
    return identity
