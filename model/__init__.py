"""FCA-Net interactive segmentation: the public API.

    from model import Predictor, Click
    predictor = Predictor.from_checkpoint()          # the bundled default model
    pred = predictor.predict("photo.jpg", [Click(120, 80), Click(200, 90, positive=False)])
    pred.mask        # (H, W) bool at the image's own size
    pred.probability # (H, W) float32

Everything outside `model/` (the Label Studio backend, the Gradio app) uses only these
names and the subpackages `model.corrections` and `model.evaluation`.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: Public name -> the module that defines it. Resolved on first use (PEP 562), so that
#: `import model.<submodule>` (the CLI's `--help`, the corrections store) does not load torch
#: and OpenCV until a name that needs them is touched.
_EXPORTS = {
    "BandCutConfig": ".refine_config",
    "ImageState": ".image_state",
    "BoundedCache": ".bounded_cache",
    "Click": ".clicks",
    "validate_clicks": ".clicks",
    "object_box": ".clicks",
    "CheckpointError": ".errors",
    "ClickError": ".errors",
    "FcanetInputError": ".errors",
    "ImageError": ".errors",
    "GraphCutRefineConfig": ".refine_config",
    "load_image": ".image_io",
    "max_image_pixels": ".image_io",
    "Prediction": ".prediction",
    "Predictor": ".predictor",
    "default_checkpoint_path": ".predictor",
    "apply_sis": ".sis",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .bounded_cache import BoundedCache
    from .clicks import Click, object_box, validate_clicks
    from .errors import CheckpointError, ClickError, FcanetInputError, ImageError
    from .refine_config import BandCutConfig, GraphCutRefineConfig
    from .image_io import load_image, max_image_pixels
    from .image_state import ImageState
    from .prediction import Prediction
    from .predictor import Predictor, default_checkpoint_path
    from .sis import apply_sis


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "BandCutConfig",
    "ImageState",
    "BoundedCache",
    "Click",
    "GraphCutRefineConfig",
    "Prediction",
    "Predictor",
    "apply_sis",
    "load_image",
    "max_image_pixels",
    "validate_clicks",
    "object_box",
    "default_checkpoint_path",
    "FcanetInputError",
    "ClickError",
    "ImageError",
    "CheckpointError",
]
__version__ = "0.1.0"
