"""Band graph cut: an exact min-cut (PyMaxflow, Boykov-Kolmogorov) over the pixels near the network's
boundary, at the working resolution, that can move that boundary both ways.

Not in the paper; the default refinement (`Predictor(band_cut=False)`, `--no-band-cut` turn it off).
It replaces GrabCut (`model/graphcut_refine.py`) as the default because it costs what the uncertain
band costs, not what the object's box costs, and because it can add what the network missed:

- the band: every pixel within `band` x R of the network's 0.5 boundary, on both sides, where R is
  the radius of a disk of the mask's area (from `min_band` to `max_band` pixels), plus disks at the
  clicks. After a few clicks the remaining errors lie within a few pixels of the boundary, so a
  narrow band gets the boundary right at the cost of its own pixels.
  Outside it the probability stays as it was; the band's outer edge lies that far OUTSIDE the mask,
  and when the cut's object reaches that edge the band is laid again around the grown mask and cut
  again (at most `rounds` cuts), so the object can grow well past the network's mask (GrabCut's
  region froze a sure-background frame right at the mask's box);
- unary terms: the network's (edge-refined) probability p, -log p / -log(1 - p), plus `colour`
  times the log-likelihood under colour histograms (16 bins a channel, lightly smoothed) of the
  mask and of the non-mask pixels around it: a histogram costs a bincount, GrabCut's mixtures cost
  k-means;
- pairwise terms: GrabCut's contrast-sensitive Potts model, `smoothness` x exp(-beta |I_i - I_j|^2)
  / distance over the 8-neighbourhood, beta = 1 / (2 mean |I_i - I_j|^2) of the image. They depend
  on the image only, so they are computed once per image (`CutWeights`, kept in the Predictor's
  per-image state); pixels on the band's edge take their fixed neighbours' terms as unary costs;
- sure labels in disks (`disk_radius`) at the clicks;
- the answer replaces the 0.5 crossing: a pixel the cut calls object gets max(p, 0.5), one it calls
  background min(p, just under 0.5), so the soft probability stays the network's and only the mask
  follows the cut.

Arrays: image (H, W, 3) uint8 and probability (H, W) float32 of one size (the Predictor passes its
working image, 512-pixel short side); clicks (x, y) in pixels of those arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .clicks import Click, object_box
from .refine_config import BandCutConfig

#: Colour histogram: bins per channel (16^3 = 4096 bins).
_BITS = 4


#: The four forward neighbours (dy, dx) of the 8-neighbourhood; each pair once.
_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class CutWeights:
    """What the cut needs from the image alone.

    colour_index: (H, W) int32 histogram bin of each pixel; pairwise: (4, H, W) float32, entry k at
    (y, x) the Potts weight exp(-beta |I(y, x) - I(y + dy, x + dx)|^2) / |(dy, dx)| for the k-th
    offset of _OFFSETS (0 where the neighbour is off the image).
    """

    colour_index: np.ndarray
    pairwise: np.ndarray

    @staticmethod
    def of(image: np.ndarray) -> "CutWeights":
        height, width = image.shape[:2]
        q = (image >> (8 - _BITS)).astype(np.int32)
        colour_index = (q[..., 0] << (2 * _BITS)) | (q[..., 1] << _BITS) | q[..., 2]
        img = image.astype(np.float32)
        diffs = np.zeros((4, height, width), np.float32)
        valid = np.zeros((4, height, width), bool)
        for k, (dy, dx) in enumerate(_OFFSETS):
            ys, yt = slice(0, height - dy), slice(dy, height)
            xs, xt = (slice(0, width - dx), slice(dx, width)) if dx >= 0 else (slice(-dx, width), slice(0, width + dx))
            d = img[ys, xs] - img[yt, xt]
            diffs[k, ys, xs] = np.einsum("hwc,hwc->hw", d, d)
            valid[k, ys, xs] = True
        mean = float(diffs[valid].mean()) if valid.any() else 0.0
        beta = 1.0 / (2.0 * mean) if mean > 0 else 0.0
        pairwise = np.exp(-beta * diffs)
        pairwise[2:] /= np.sqrt(2.0)
        pairwise[~valid] = 0.0
        return CutWeights(colour_index=colour_index, pairwise=pairwise.astype(np.float32))


def band_mask(mask: np.ndarray, clicks: Sequence[Click], config: BandCutConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """((H, W) bool, the pixels the cut may relabel (see the module's docstring); (H, W) bool, the
    band's outermost pixels outside the mask, where an object that reaches them may grow further;
    the band's half-width in pixels)."""
    area = int(mask.sum())
    half = min(config.max_band, max(config.min_band, config.band * np.sqrt(area / np.pi)))
    m = mask.astype(np.uint8)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)  # 0 inside the mask
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 3)       # 0 outside the mask
    band = (outside <= half) & (inside <= half)
    rim = band & (outside > half - 1.5)
    if clicks:
        disks = np.zeros_like(m)
        for c in clicks:
            cv2.circle(disks, (int(round(c.x)), int(round(c.y))), config.disk_radius + 1, 1, -1)
        band |= disks.astype(bool)
    return band, rim, half


def _box_of(band: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1), ends exclusive: the band's bounding box (`object_box`), one pixel wider on
    each side."""
    height, width = band.shape
    x0, y0, x1, y1 = object_box(band, ())
    return max(0, y0 - 1), min(height, y1 + 1), max(0, x0 - 1), min(width, x1 + 1)


def _colour_costs(colour_index: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(-log P(colour | object), -log P(colour | background)) for every pixel of colour_index, from
    histograms of the bins fg and bg (1-D arrays of the two models' samples), smoothed over
    neighbouring bins."""
    from scipy.ndimage import uniform_filter

    bins = 1 << (3 * _BITS)
    side = 1 << _BITS
    out = []
    for sel in (fg, bg):
        hist = np.bincount(sel, minlength=bins).astype(np.float64).reshape(side, side, side)
        hist = uniform_filter(hist, size=3, mode="nearest") + 1e-3
        prob = hist / hist.sum()
        out.append((-np.log(prob)).astype(np.float32).ravel()[colour_index])
    return out[0], out[1]


def band_cut(image: np.ndarray, probability: np.ndarray, clicks: Sequence[Click],
             config: BandCutConfig = BandCutConfig(), weights: CutWeights | None = None) -> np.ndarray:
    """(H, W) float32: `probability` whose 0.5 crossing follows the band's min-cut; `weights` are the
    image's own terms (computed here when None)."""
    if image.shape[:2] != probability.shape:
        raise ValueError(f"image {image.shape[:2]} and probability {probability.shape} differ in size")
    mask = probability >= 0.5
    if not mask.any():
        return probability
    weights = weights if weights is not None else CutWeights.of(image)
    p = np.clip(probability, 1e-4, 1 - 1e-4).astype(np.float32)
    cost_fg, cost_bg = -np.log(p), -np.log1p(-p)
    frontier = None
    for round_ in range(config.rounds):
        band, rim, half = band_mask(mask, clicks, config)
        if round_ == 0 and config.colour > 0:
            # The colour models are the network mask's and the rest of the first band's box: later
            # rounds keep them (a box around the growth alone would count the missed object's own
            # colours as background).
            y0, y1, x0, x1 = _box_of(band)
            idx = weights.colour_index[y0:y1, x0:x1]
            m = mask[y0:y1, x0:x1]
            col_fg, col_bg = _colour_costs(weights.colour_index, idx[m], idx[~m])
            cost_fg = cost_fg + config.colour * col_fg
            cost_bg = cost_bg + config.colour * col_bg
        if frontier is not None:
            # A later round reopens only the band near where the object reached the last band's
            # edge: elsewhere the last cut stands, and the round costs what the growth costs.
            # (A distance transform: a dilation by a disk this large costs ten times more.)
            near = cv2.distanceTransform((~frontier).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            band &= near <= 2 * half
        mask_before, mask = mask, _cut_band(mask, band, cost_fg, cost_bg, clicks, config, weights)
        frontier = mask & rim & ~mask_before
        if not frontier.any():
            break
    out = probability.astype(np.float32, copy=True)
    # Only the 0.5 crossing moves: the soft values stay the network's on either side of it.
    out = np.where(mask, np.maximum(out, 0.5), np.minimum(out, np.nextafter(np.float32(0.5), np.float32(0))))
    return out.astype(np.float32, copy=False)


def _cut_band(mask: np.ndarray, band: np.ndarray, cost_fg: np.ndarray, cost_bg: np.ndarray, clicks: Sequence[Click],
              config: BandCutConfig, weights: CutWeights) -> np.ndarray:
    """(H, W) bool: `mask` with the band's pixels relabelled by one min-cut; cost_fg / cost_bg are the
    (H, W) unary costs of calling each pixel object / background."""
    import maxflow

    if not band.any():
        return mask
    # Work in the band's box, one pixel wider so that its fixed neighbours are inside it.
    y0, y1, x0, x1 = _box_of(band)
    b = band[y0:y1, x0:x1]
    m = mask[y0:y1, x0:x1]
    cost_fg = cost_fg[y0:y1, x0:x1].astype(np.float64)
    cost_bg = cost_bg[y0:y1, x0:x1].astype(np.float64)
    h, w = b.shape
    node_of = np.full((h, w), -1, np.int64)
    n = int(b.sum())
    node_of[b] = np.arange(n)
    graph = maxflow.Graph[float](n, 4 * n)
    graph.add_nodes(n)
    pair = weights.pairwise[:, y0:y1, x0:x1]
    for k, (dy, dx) in enumerate(_OFFSETS):
        # Source pixel (y, x) and its neighbour (y + dy, x + dx), both inside the box.
        ys_, yt = slice(0, h - dy), slice(dy, h)
        xs_, xt = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        wk = config.smoothness * pair[k, ys_, xs_].astype(np.float64)
        bs, bt = b[ys_, xs_], b[yt, xt]
        both = bs & bt
        if both.any():
            graph.add_edges(node_of[ys_, xs_][both], node_of[yt, xt][both], wk[both], wk[both])
        # A band pixel next to a fixed one pays the Potts term when it takes the other label. In one
        # direction each pixel has one neighbour, so whole-array adds need no scatter.
        for here, sl_here, sl_there in ((bs & ~bt, (ys_, xs_), (yt, xt)), (bt & ~bs, (yt, xt), (ys_, xs_))):
            if not here.any():
                continue
            fixed_fg = m[sl_there]
            cost_fg[sl_here] += np.where(here & ~fixed_fg, wk, 0.0)
            cost_bg[sl_here] += np.where(here & fixed_fg, wk, 0.0)
    big = 1e9
    for c in clicks:
        disk = np.zeros((h, w), np.uint8)
        cv2.circle(disk, (int(round(c.x)) - x0, int(round(c.y)) - y0), config.disk_radius, 1, -1)
        disk = disk.astype(bool) & b
        if c.positive:
            cost_bg[disk], cost_fg[disk] = big, 0.0
        else:
            cost_fg[disk], cost_bg[disk] = big, 0.0
    # Source = object: a node left on the sink side (background) cuts its source edge, so the
    # source capacity is the cost of calling it background.
    low = np.minimum(cost_fg[b], cost_bg[b])
    graph.add_grid_tedges(np.arange(n), cost_bg[b] - low, cost_fg[b] - low)
    graph.maxflow()
    out = mask.copy()
    sub = out[y0:y1, x0:x1]
    sub[b] = ~graph.get_grid_segments(np.arange(n))
    return out
