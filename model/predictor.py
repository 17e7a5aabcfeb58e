"""The predictor: the one door into the model for every front end.

Build it once per process from a checkpoint, then call `predict(image, clicks)` with the
whole ordered click sequence every time (it keeps no click history). Coordinates are
(x, y) in pixels of the original image; the first click is the anchor and must be
positive.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import CheckpointMetadata, load_checkpoint
from .clicks import Click, validate_clicks
from .config import preset
from .edge_refine import EdgeRefineConfig, GuideCache, guided_filter
from .errors import CheckpointError
from .graphcut_refine import GraphCutRefineConfig, graphcut_refine
from .image_io import ImageSource, load_image
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
        graphcut_refine: bool | GraphCutRefineConfig = True,
        optimise: bool = True,
    ):
        self.metadata_obj = metadata
        self.short_side = int(short_side or metadata.short_side)
        if self.short_side < 16:
            raise ValueError(f"short_side must be at least 16, got {self.short_side}")
        self.device = torch.device(device)
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
        #: (`model/graphcut_refine.py`; on by default), or None. Both None: the paper's output.
        self.graphcut_refine: GraphCutRefineConfig | None = (
            graphcut_refine if isinstance(graphcut_refine, GraphCutRefineConfig)
            else GraphCutRefineConfig() if graphcut_refine else None)
        self._guide_cache = GuideCache()
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
        return {**self.metadata_obj.describe(), "zoom_in": zoom_in, "grid_align": self.grid_align,
                "edge_refine": edge_refine, "graphcut_refine": graphcut}

    # ----------------------------------------------------------------- inference
    def predict(self, image: ImageSource, clicks: Sequence, *, sis: bool = True) -> Prediction:
        """Mask and probability for the object the clicks point at.

        image: a path, encoded bytes, PIL image or array (any mode; see `load_image`).
        clicks: ordered; each a Click, [x, y(, positive)] or {x, y, positive}; (x, y) in
        original pixels; the first must be positive.
        Returns a Prediction at the image's own (H, W).
        """
        start = time.perf_counter()
        rgb = load_image(image)
        height, width = rgb.shape[:2]
        clicks = validate_clicks(clicks, width, height)
        probability = self.probability(rgb, clicks)
        mask = probability >= 0.5
        if sis:
            mask = apply_sis(mask, clicks, self.sis_connectivity)
        return Prediction(mask=mask, probability=probability, model_version=self.model_version,
                          seconds=time.perf_counter() - start)

    def probability(self, rgb: np.ndarray, clicks: Sequence[Click]) -> np.ndarray:
        """(H, W) float32 foreground probability for validated clicks on an (H, W, 3) uint8 image.

        With zoom-in on, a second pass on a crop around the first pass's mask replaces the
        probabilities inside that crop (`model/zoom_in.py`).
        """
        prob = self._network_probability(rgb, clicks, self.short_side)
        if self.zoom_in is None or len(clicks) <= self.zoom_in.skip_clicks:
            return prob
        box = focus_box(prob >= 0.5, clicks, self.zoom_in)
        if box is None:
            return prob
        short_side = crop_short_side(box, rgb.shape[:2], self.short_side, self.zoom_in)
        if short_side is None:
            return prob
        x0, y0, x1, y1 = box
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        prob = prob.copy()
        prob[y0:y1, x0:x1] = self._network_probability(crop, crop_clicks(clicks, box), short_side)
        return prob

    def _network_probability(self, rgb: np.ndarray, clicks: Sequence[Click], short_side: int) -> np.ndarray:
        """One forward pass at the given working short side; (H, W) float32 at rgb's size."""
        height, width = rgb.shape[:2]
        frame = WorkingFrame.for_short_side(height, width, short_side)
        work = frame.resize_image(rgb)
        work_clicks = [frame.to_work(c) for c in clicks]
        maps = click_map_tensors(work_clicks, frame.work_height, frame.work_width)
        if not work.flags.writeable or not work.flags.c_contiguous:
            # A caller's read-only array (or a view) at the working size: torch needs its own copy.
            work = np.array(work, order="C")
        image = torch.from_numpy(work).permute(2, 0, 1)[None]
        image = normalise(image, self.metadata_obj.normalisation)
        maps = maps[None]
        if self.grid_align:
            pad_bottom, pad_right = grid_padding(frame.work_height, frame.work_width)
            # Edge pixels, not zeros: a zero (mid-grey after normalising) band would be new content.
            image = F.pad(image, (0, pad_right, 0, pad_bottom), mode="replicate")
            maps = F.pad(maps, (0, pad_right, 0, pad_bottom))
        fmt = torch.channels_last if self._channels_last else torch.contiguous_format
        image = image.to(self.device).contiguous(memory_format=fmt)
        maps = maps.to(self.device).contiguous(memory_format=fmt)
        with self._lock, torch.inference_mode():
            out = self.network(image, maps[:, 0:1], maps[:, 1:2], maps[:, 2:3])
            logits = out.logits[0, 0, : frame.work_height, : frame.work_width]
            prob = torch.sigmoid(logits).float().cpu().numpy()
        if self.edge_refine is not None:
            # At the working size, so that the radius means the same share of any image and the
            # cost stays that of a 512-pixel image however large the photo.
            prob = guided_filter(work, prob, self.edge_refine, self._guide_cache)
        if self.graphcut_refine is not None:
            prob = graphcut_refine(work, prob, work_clicks, self.graphcut_refine)
        return frame.probability_to_original(prob).astype(np.float32, copy=False)
