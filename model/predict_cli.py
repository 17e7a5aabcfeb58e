"""`fcanet predict`: one image, a click sequence, a 0/255 mask PNG (and an optional overlay)."""

from __future__ import annotations

import argparse

from .predictor_flags import add_predictor_arguments, predictor_from_args


def _parse_click(text: str):
    from .clicks import Click
    from .errors import ClickError

    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"a click is X,Y or X,Y,neg (got {text!r})")
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"click coordinates must be numbers (got {text!r})") from None
    if len(parts) == 3:
        sign = parts[2].lower()
        if sign not in ("neg", "pos", "-", "+", "negative", "positive"):
            raise argparse.ArgumentTypeError(f"the third part of a click is 'neg' or 'pos' (got {parts[2]!r})")
        return Click(x, y, positive=sign in ("pos", "+", "positive"))
    return Click(x, y, True)


def register(sub) -> None:
    p = sub.add_parser("predict", help="segment one object of an image from clicks")
    p.add_argument("image", help="input image (any format Pillow reads)")
    p.add_argument("--click", action="append", type=_parse_click, required=True, metavar="X,Y[,neg]",
                   help="a click in original pixels; repeat in order; the first must be positive")
    p.add_argument("--out", required=True, help="output mask PNG (0 background, 255 object)")
    p.add_argument("--overlay", help="also write the image with the mask and clicks drawn on it")
    p.add_argument("--checkpoint", help="checkpoint (.safetensors, or the authors' .pth); default: bundled")
    add_predictor_arguments(p)
    p.add_argument("--no-sis", action="store_true", help="skip the structural integrity strategy")
    p.set_defaults(func=run)


def run(args) -> int:
    from PIL import Image

    from .image_io import load_image
    from .overlay import draw_overlay

    rgb = load_image(args.image)
    predictor = predictor_from_args(args)
    pred = predictor.predict(rgb, args.click, sis=not args.no_sis)
    Image.fromarray(pred.mask_u8()).save(args.out)
    if args.overlay:
        Image.fromarray(draw_overlay(rgb, pred.mask, args.click)).save(args.overlay)
    area = 100.0 * pred.mask.mean()
    print(f"{args.out}: {pred.mask.shape[1]}x{pred.mask.shape[0]} mask, {area:.1f}% object, "
          f"{pred.seconds * 1000:.0f} ms, model {pred.model_version}")
    return 0
