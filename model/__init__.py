"""FCA-Net interactive segmentation: the public API.

    from model import Predictor, Click
    predictor = Predictor.from_checkpoint()          # the bundled default model
    pred = predictor.predict("photo.jpg", [Click(120, 80), Click(200, 90, positive=False)])
    pred.mask        # (H, W) bool at the image's own size
    pred.probability # (H, W) float32

Everything outside `model/` (the Label Studio backend, the Gradio app) uses only these
names and the subpackages `model.corrections` and `model.evaluation`.
"""

from .band_cut import BandCutConfig
from .clicks import Click, validate_clicks
from .errors import CheckpointError, ClickError, FcanetInputError, ImageError
from .graphcut_refine import GraphCutRefineConfig
from .image_io import load_image
from .image_state import ImageState
from .prediction import Prediction
from .predictor import Predictor, default_checkpoint_path
from .sis import apply_sis

__all__ = [
    "BandCutConfig",
    "Click",
    "ImageState",
    "GraphCutRefineConfig",
    "Prediction",
    "Predictor",
    "apply_sis",
    "load_image",
    "validate_clicks",
    "default_checkpoint_path",
    "FcanetInputError",
    "ClickError",
    "ImageError",
    "CheckpointError",
]
__version__ = "0.1.0"
