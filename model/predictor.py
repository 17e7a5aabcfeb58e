"""The predictor: the one door into the model for every front end.

Build it once per process from a checkpoint, then call `predict(image, clicks)` with the
whole ordered click sequence every time (it keeps no click history). What depends on the image
alone is computed once per image (`set_image`, `model/image_state.py`) and kept in a small LRU
keyed by the image's content, so repeated clicks on one image pay only for what the clicks change. Coordinates are
(x, y) in pixels of the original image; the first click is the anchor and must be
positive.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .band_cut import BandCutConfig, CutWeights, band_cut
from .checkpoint import CheckpointMetadata, load_checkpoint
from .clicks import Click, validate_clicks
from .config import preset
from .edge_refine import EdgeRefineConfig, GuideStatistics, guided_filter
from .errors import CheckpointError
from .graphcut_refine import GraphCutRefineConfig, graphcut_refine
from .image_io import ImageSource, load_image
from .image_state import ImageState, ImageStateCache, content_key
from .inference_precision import forward_context, resolve_precision
from .prediction import Prediction
from .preprocess import WorkingFrame, click_map_tensors, grid_padding, normalise
from .sis import PAPER_CONNECTIVITY, apply_sis
from .zoom_in import ZoomInConfig, crop_clicks, crop_short_side, focus_box

#: The bundled default model, shipped inside the package.
DEFAULT_CHECKPOINT = Path(__file__).parent / "weights" / "fcanet-efficientnet-lite0.safetensors"


def default_checkpoint_path() -> Path:
    """The bundled model, or the file named by FCANET_CHECKPOINT when that is set."""
    override = os.environ.get("FCANET_CHECKPOINT")
    return Path(override) if override else DEFAULT_CHECKPOINT


class Predictor:
    """An FCA-Net ready for inference.

    Thread-safe: one lock serialises forward passes (on a 2-core CPU concurrent passes only
    compete for the same cores), everything else runs concurrently.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        metadata: CheckpointMetadata,
        *,
        short_side: int | None = None,
        device: str = "cpu",
        sis_connectivity: int = PAPER_CONNECTIVITY,
        zoom_in: bool | ZoomInConfig = False,
        grid_align: bool | None = None,
        edge_refine: bool | EdgeRefineConfig = True,
        graphcut_refine: bool | GraphCutRefineConfig = False,
        band_cut: bool | BandCutConfig | None = None,
        optimise: bool = True,
        image_cache_size: int = 4,
        precision: str = "auto",
    ):
        self.metadata_obj = metadata
        self.short_side = int(short_side or metadata.short_side)
        if self.short_side < 16:
            raise ValueError(f"short_side must be at least 16, got {self.short_side}")
        self.device = torch.device(device)
        #: "fp32" or "bf16": the forward pass's arithmetic (`model/inference_precision.py`; "auto"
        #: picks bf16 only on CPUs that compute it natively).
        self.precision = resolve_precision(precision, self.device)
        self.sis_connectivity = sis_connectivity
        #: None (the paper: one pass on the whole image) or how to zoom in for a second pass.
        self.zoom_in: ZoomInConfig | None = (zoom_in if isinstance(zoom_in, ZoomInConfig)
                                             else ZoomInConfig() if zoom_in else None)
        #: Pad the working image bottom/right to 16k + 1 pixels so that the upsampled features
        #: land where they were computed (`grid_padding`); False feeds the working size as is.
        #: None: as the checkpoint was trained (a network trained on 16k crops has learned the
        #: misaligned grid, and aligning only at inference costs it accuracy).
        self.grid_align = bool(metadata.grid_align if grid_align is None else grid_align)
        #: The guided filter that pulls the probability onto colour edges at the working
        #: resolution (`model/edge_refine.py`; on by default), or None.
        self.edge_refine: EdgeRefineConfig | None = (edge_refine if isinstance(edge_refine, EdgeRefineConfig)
                                                     else EdgeRefineConfig() if edge_refine else None)
        #: GrabCut seeded by the network's mask, blended in around the object
        #: (`model/graphcut_refine.py`; the default before the band cut), or None.
        self.graphcut_refine: GraphCutRefineConfig | None = (
            graphcut_refine if isinstance(graphcut_refine, GraphCutRefineConfig)
            else GraphCutRefineConfig() if graphcut_refine else None)
        if band_cut is None:
            # Unsaid: on, unless GrabCut was asked for (the two are alternatives).
            band_cut = self.graphcut_refine is None
        if band_cut and self.graphcut_refine is not None:
            raise ValueError("choose one graph-cut refinement: band_cut or graphcut_refine, not both")
        #: The min-cut over the band around the network's boundary (`model/band_cut.py`; on by
        #: default), or None. None here, no GrabCut and no edge refinement: the paper's output.
        self.band_cut: BandCutConfig | None = (band_cut if isinstance(band_cut, BandCutConfig)
                                               else BandCutConfig() if band_cut else None)
        #: The last few images' ImageStates, keyed by content (0: compute them every call).
        self.image_states = ImageStateCache(image_cache_size)
        network = network.eval()
        if optimise:
            from .network.fusion import fold_batchnorm

            network = fold_batchnorm(network)
        self._channels_last = self.device.type == "cpu"
        if self._channels_last:
            network = network.to(memory_format=torch.channels_last)
        self.network = network.to(self.device)
        self._lock = threading.Lock()
        #: The file this predictor was loaded from (None when built in memory); fine-tuning
        #: continues from it.
        self.checkpoint_path: str | None = None

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike | None = None, *, short_side: int | None = None, device: str = "cpu", **kwargs: Any
    ) -> "Predictor":
        """Our `.safetensors` checkpoint, the authors' `.pth` (architecture detected from its
        keys), or the bundled default when path is None."""
        path = Path(path) if path is not None else default_checkpoint_path()
        if not path.is_file():
            raise CheckpointError(f"no checkpoint file at {path}")
        if path.suffix in (".pth", ".pt"):
            from .network.official import load_official_checkpoint

            network = load_official_checkpoint(path)
            metadata = CheckpointMetadata(
                network=network.config,
                version=f"official-{network.config.backbone}-{path.stem}",
                provenance={"initialisation": "authors' released checkpoint", "trained": True,
                            "trained_on": ["SBD", "PASCAL VOC"], "source_file": path.name},
            )
        else:
            network, metadata = load_checkpoint(path)
        predictor = cls(network, metadata, short_side=short_side, device=device, **kwargs)
        predictor.checkpoint_path = str(path.resolve())
        return predictor

    @classmethod
    def for_tests(cls, seed: int = 0, short_side: int = 64) -> "Predictor":
        """A random-initialised tiny network: instant to build, its masks mean nothing."""
        from .network.fcanet import FCANet

        torch.manual_seed(seed)
        config = preset("tiny")
        metadata = CheckpointMetadata(network=config, version=f"tiny-test-{seed}", short_side=short_side,
                                      provenance={"trained": False, "initialisation": "random"})
        return cls(FCANet(config).eval(), metadata)

    # ----------------------------------------------------------------- properties
    @property
    def model_version(self) -> str:
        return self.metadata_obj.version

    @property
    def metadata(self) -> dict[str, Any]:
        zoom_in = dataclasses.asdict(self.zoom_in) if self.zoom_in is not None else False
        edge_refine = dataclasses.asdict(self.edge_refine) if self.edge_refine is not None else False
        graphcut = dataclasses.asdict(self.graphcut_refine) if self.graphcut_refine is not None else False
        band = dataclasses.asdict(self.band_cut) if self.band_cut is not None else False
        return {**self.metadata_obj.describe(), "zoom_in": zoom_in, "grid_align": self.grid_align,
                "edge_refine": edge_refine, "graphcut_refine": graphcut, "band_cut": band,
                "precision": self.precision}

    # ----------------------------------------------------------------- per-image state
    def set_image(self, image: ImageSource | ImageState) -> ImageState:
        """Decode the image and compute everything that depends on it alone (see
        `model/image_state.py`); pass the result to `predict` instead of the image. The state is
        also kept in the predictor's LRU, so `predict(image, ...)` with the same pixels reuses it."""
        if isinstance(image, ImageState):
            return image
        rgb = load_image(image)
        key = (*content_key(rgb), self.short_side)
        state = self.image_states.get(key)
        if state is None:
            state = self._make_state(rgb, self.short_side, key)
            self.image_states.put(state)
        return state

    def _make_state(self, rgb: np.ndarray, short_side: int, key: tuple | None = None) -> ImageState:
        height, width = rgb.shape[:2]
        frame = WorkingFrame.for_short_side(height, width, short_side)
        work = frame.resize_image(rgb)
        if not work.flags.writeable or not work.flags.c_contiguous or work is rgb:
            # A caller's array (or a view) at the working size: keep our own copy.
            work = np.array(work, order="C")
        image = normalise(torch.from_numpy(work).permute(2, 0, 1)[None], self.metadata_obj.normalisation)
        if self.grid_align:
            pad_bottom, pad_right = grid_padding(frame.work_height, frame.work_width)
            # Edge pixels, not zeros: a zero (mid-grey after normalising) band would be new content.
            image = F.pad(image, (0, pad_right, 0, pad_bottom), mode="replicate")
        fmt = torch.channels_last if self._channels_last else torch.contiguous_format
        image = image.to(self.device).contiguous(memory_format=fmt)
        guide = GuideStatistics.of(work, self.edge_refine) if self.edge_refine is not None else None
        cut = CutWeights.of(work) if self.band_cut is not None else None
        return ImageState(key=key if key is not None else (*content_key(rgb), short_side), rgb=rgb, frame=frame,
                          work=work, tensor=image, guide=guide, cut=cut)

    # ----------------------------------------------------------------- inference
    def predict(self, image: ImageSource | ImageState, clicks: Sequence, *, sis: bool = True,
                refine: bool = True) -> Prediction:
        """Mask and probability for the object the clicks point at.

        image: a path, encoded bytes, PIL image or array (any mode; see `load_image`), or the
        ImageState `set_image` returned for it.
        clicks: ordered; each a Click, [x, y(, positive)] or {x, y, positive}; (x, y) in
        original pixels; the first must be positive.
        refine: False skips the graph cut (band cut or GrabCut) and returns the network's mask with
        the guided filter, `Prediction.final` False: what a busy server answers to keep up (with
        zoom-in, which has no such stage, the answer is the refined one).
        Returns a Prediction at the image's own (H, W).
        """
        if not refine:
            return next(iter(self.predict_stages(image, clicks, sis=sis, fast=True)))
        *_, last = self.predict_stages(image, clicks, sis=sis, fast=False)
        return last

    def predict_stages(self, image: ImageSource | ImageState, clicks: Sequence, *, sis: bool = True,
                       fast: bool = True) -> Iterator[Prediction]:
        """Progressive results from one forward pass: with `fast`, first the network's mask (with edge
        refinement, before any graph cut; about the network's cost), then the refined one (the
        same as `predict`). Without a graph cut, or with zoom-in, or fast=False: only the final one."""
        start = time.perf_counter()
        state = self.set_image(image)
        height, width = state.rgb.shape[:2]
        clicks = validate_clicks(clicks, width, height)
        refined = self.graphcut_refine is not None or self.band_cut is not None
        if fast and refined and self.zoom_in is None:
            work_clicks = [state.frame.to_work(c) for c in clicks]
            prob = self._work_network_probability(state, work_clicks)
            yield self._prediction(state.frame.probability_to_original(prob), clicks, sis, start, final=False)
            prob = self._work_graph_cut(state, prob, work_clicks)
            yield self._prediction(state.frame.probability_to_original(prob), clicks, sis, start)
            return
        yield self._prediction(self.probability(state, clicks), clicks, sis, start)

    def _prediction(self, probability: np.ndarray, clicks: Sequence[Click], sis: bool, start: float,
                    final: bool = True) -> Prediction:
        probability = probability.astype(np.float32, copy=False)
        mask = probability >= 0.5
        if sis:
            mask = apply_sis(mask, clicks, self.sis_connectivity)
        return Prediction(mask=mask, probability=probability, model_version=self.model_version,
                          seconds=time.perf_counter() - start, final=final)

    def probability(self, image: np.ndarray | ImageState, clicks: Sequence[Click]) -> np.ndarray:
        """(H, W) float32 foreground probability for validated clicks on an (H, W, 3) uint8 image
        (or its ImageState).

        With zoom-in on, a second pass on a crop around the first pass's mask replaces the
        probabilities inside that crop (`model/zoom_in.py`).
        """
        state = image if isinstance(image, ImageState) else self.set_image(image)
        rgb = state.rgb
        prob = self._network_probability(state, clicks)
        if self.zoom_in is None or len(clicks) <= self.zoom_in.skip_clicks:
            return prob
        box = focus_box(prob >= 0.5, clicks, self.zoom_in)
        if box is None:
            return prob
        short_side = crop_short_side(box, rgb.shape[:2], self.short_side, self.zoom_in)
        if short_side is None:
            return prob
        x0, y0, x1, y1 = box
        crop = self._make_state(np.ascontiguousarray(rgb[y0:y1, x0:x1]), short_side)
        prob = prob.copy()
        prob[y0:y1, x0:x1] = self._network_probability(crop, crop_clicks(clicks, box))
        return prob

    def _network_probability(self, state: ImageState, clicks: Sequence[Click]) -> np.ndarray:
        """One forward pass and the refinements on the state's working image; (H, W) float32 at
        the state's original size."""
        work_clicks = [state.frame.to_work(c) for c in clicks]
        prob = self._work_graph_cut(state, self._work_network_probability(state, work_clicks), work_clicks)
        return state.frame.probability_to_original(prob).astype(np.float32, copy=False)

    def _work_network_probability(self, state: ImageState, work_clicks: Sequence[Click]) -> np.ndarray:
        """(h, w) float32 at the working size: the network's probability, edge-refined when that is on."""
        frame = state.frame
        maps = click_map_tensors(work_clicks, frame.work_height, frame.work_width)[None]
        if self.grid_align:
            pad_bottom, pad_right = grid_padding(frame.work_height, frame.work_width)
            maps = F.pad(maps, (0, pad_right, 0, pad_bottom))
        fmt = torch.channels_last if self._channels_last else torch.contiguous_format
        maps = maps.to(self.device).contiguous(memory_format=fmt)
        with self._lock, torch.inference_mode(), forward_context(self.precision, self.device):
            out = self.network(state.tensor, maps[:, 0:1], maps[:, 1:2], maps[:, 2:3])
            logits = out.logits[0, 0, : frame.work_height, : frame.work_width]
            prob = torch.sigmoid(logits).float().cpu().numpy()
        if self.edge_refine is not None:
            # At the working size, so that the radius means the same share of any image and the
            # cost stays that of a 512-pixel image however large the photo.
            prob = guided_filter(state.work, prob, self.edge_refine, stats=state.guide)
        return prob

    def _work_graph_cut(self, state: ImageState, prob: np.ndarray, work_clicks: Sequence[Click]) -> np.ndarray:
        """The graph-cut refinement that is on (band cut or GrabCut) at the working size."""
        if self.band_cut is not None:
            return band_cut(state.work, prob, work_clicks, self.band_cut, state.cut)
        if self.graphcut_refine is not None:
            return graphcut_refine(state.work, prob, work_clicks, self.graphcut_refine)
        return prob
