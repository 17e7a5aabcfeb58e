"""The settings of the mask refinements (not in the paper), apart from their code.

Only dataclasses live here, so that the command line can show their defaults in `--help` without
loading OpenCV, SciPy or torch. The refinements themselves: `model/edge_refine.py` (guided filter),
`model/band_cut.py` (the default graph cut), `model/graphcut_refine.py` (GrabCut).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EdgeRefineConfig:
    """radius: window half-size in pixels of the arrays filtered (working pixels in the Predictor);
    eps: regularisation (larger: smoother)."""

    #: Chosen on training images (`scripts/tune_refinement.py`, every 16th COCO_MVal object):
    #: radius 8 / 16 / 24 / 32 gave NoC@85 7.42 / 6.92 / 7.78 / 8.54 against 8.26 without.
    radius: int = 16
    eps: float = 1e-3

    def __post_init__(self) -> None:
        if self.radius < 1:
            raise ValueError(f"edge refinement radius must be at least 1, got {self.radius}")
        if not self.eps > 0:
            raise ValueError(f"edge refinement eps must be positive, got {self.eps}")


@dataclass(frozen=True)
class GraphCutRefineConfig:
    """iterations: GrabCut rounds; max_side: the region is shrunk to this long side first (cost);
    margin: share of the mask box's size added on each side, at least min_margin of the image's
    short side; disk_radius: sure seeds at the clicks,
    in pixels of the shrunk region; weight: GrabCut's share in the blended probability;
    full_resolution: a last cut of the region with the shrunk region's colour models, at its own size
    or at most cut_side pixels on its long side (0: no cap; about 1 s a click on a 640x480 photo)."""

    #: Chosen on training images (`scripts/tune_refinement.py`, every 16th COCO_MVal object, the
    #: campaign 13 bundle with edge refinement; JSON in
    #: docs/results/screens/tune-graphcut-c13.jsonl): NoC@85/90 7.04 / 10.74 without. At 320 px
    #: and 3 iterations: weight 0.25 / 0.35 / 0.5 gave 5.64 / 8.04,
    #: 5.64 / 7.94, 5.86 / 8.08; margin 0.1 / 0.5 (weight 0.5) 5.74 / 7.96, 6.28 / 8.44; min_margin
    #: 0.1 / 0.2 (weight 0.5) 5.98 / 8.22, 6.42 / 8.70. At weight 0.35: 160 px, 3 / 1 iterations
    #: 5.80 / 8.12, 5.78 / 8.04; 200 px, 2 iterations 5.82 / 8.08; 480 px 5.72 / 8.02 - all within
    #: this sample's noise (about 0.3), so the cheapest: 160 px, one iteration, about 40 ms a click
    #: against about 370 ms at 320 px and 3.
    #: full_resolution was chosen on BSDS500's hand-traced segments (every 200th, 60; COCO's polygons
    #: are too coarse to show it; `tune_refinement.py --bsds`, JSON in
    #: docs/results/screens/tune-graphcut-fullres-bsds-c14.jsonl): NoC@85/90 10.52 / 13.80 without,
    #: 10.33 / 13.23 with; at 320 px and 3 iterations 10.20 / 13.67 and 10.02 / 13.25.
    iterations: int = 1
    max_side: int = 160
    margin: float = 0.25
    min_margin: float = 0.0
    disk_radius: int = 4
    weight: float = 0.35
    full_resolution: bool = True
    cut_side: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"graph-cut refinement needs at least 1 iteration, got {self.iterations}")
        if self.max_side < 16:
            raise ValueError(f"graph-cut refinement max_side must be at least 16, got {self.max_side}")
        if not 0 <= self.margin <= 4:
            raise ValueError(f"graph-cut refinement margin must be in [0, 4], got {self.margin}")
        if not 0 <= self.min_margin <= 1:
            raise ValueError(f"graph-cut refinement min_margin must be in [0, 1], got {self.min_margin}")
        if self.disk_radius < 0:
            raise ValueError(f"graph-cut refinement disk_radius must be >= 0, got {self.disk_radius}")
        if self.cut_side < 0:
            raise ValueError(f"graph-cut refinement cut_side must be >= 0, got {self.cut_side}")
        if not 0 < self.weight <= 1:
            raise ValueError(f"graph-cut refinement weight must be in (0, 1], got {self.weight}")


@dataclass(frozen=True)
class BandCutConfig:
    """band: the band's half-width as a share of the mask's equivalent radius, at least min_band and
    at most max_band working pixels; rounds: at most this many cuts, each around the last one's
    object, while the object reaches the band's outer edge; colour: weight of the colour log-likelihood against the network's; smoothness:
    weight of the pairwise term; disk_radius: sure labels at the clicks, in working pixels."""

    #: colour and smoothness chosen on training images with the forward passes shared between settings
    #: (`scripts/screen_band_cut.py`, mean IoU after clicks 1/2/3, JSON in
    #: docs/results/screens/screen-band-cut-*-c14.jsonl). Every 400th BSDS500 segment (30):
    #: smoothness 4 / 10 / 25 / 50 at colour 1 gave 0.383 / 0.381 / 0.379 / 0.379 after one click
    #: and 0.573 / 0.569 / 0.562 /
    #: 0.556 after three; colour 0.5 / 2 at smoothness 10 0.558 / 0.586 after three; GrabCut with
    #: its full-resolution cut 0.388 / 0.575. Every 16th COCO_MVal object (50), the same order:
    #: 0.724 / 0.726 / 0.719 / 0.714, colour 0.5 / 2 0.721 / 0.721, GrabCut 0.724 after three
    #: clicks; after one click GrabCut 0.639 against 0.59-0.60 for every band setting. Differences
    #: between band settings are within these samples' noise (about 0.01); colour 2 at smoothness 10
    #: is the best on BSDS500's fine boundaries.
    band: float = 0.25
    min_band: int = 8
    max_band: int = 24
    colour: float = 2.0
    smoothness: float = 10.0
    disk_radius: int = 4
    rounds: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.band <= 4:
            raise ValueError(f"band cut band must be in [0, 4], got {self.band}")
        if self.min_band < 1:
            raise ValueError(f"band cut min_band must be at least 1, got {self.min_band}")
        if self.max_band < self.min_band:
            raise ValueError(f"band cut max_band must be at least min_band, got {self.max_band} < {self.min_band}")
        if self.colour < 0:
            raise ValueError(f"band cut colour weight must be >= 0, got {self.colour}")
        if self.smoothness < 0:
            raise ValueError(f"band cut smoothness must be >= 0, got {self.smoothness}")
        if self.disk_radius < 0:
            raise ValueError(f"band cut disk_radius must be >= 0, got {self.disk_radius}")
        if self.rounds < 1:
            raise ValueError(f"band cut rounds must be at least 1, got {self.rounds}")
