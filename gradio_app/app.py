"""The Gradio app: layout and wiring. Behaviour lives in handlers.py.

`build_demo(predictor, store)` builds the Blocks; `fcanet demo` launches it and
`fcanet serve --with-demo` mounts it beside the Label Studio routes, one model for both.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from . import handlers as h
from .downloads import SessionDownloads
from .state import Session

#: Pressing "n" or "p" anywhere on the page switches the click mode: the quick way to
#: place a negative click (Gradio's select event cannot tell a right click or a modifier).
KEYBOARD_JS = """
() => {
  document.addEventListener('keydown', (e) => {
    if (e.target && ['INPUT', 'TEXTAREA'].includes(e.target.tagName)) return;
    const want = e.key === 'n' ? 'negative' : (e.key === 'p' ? 'positive' : null);
    if (!want) return;
    const radio = document.querySelector(`#click-mode input[value="${want}"]`);
    if (radio) radio.click();
  });
}
"""

EXAMPLES = {"astronaut": "astronaut", "coffee": "coffee", "cat (chelsea)": "chelsea", "rocket": "rocket"}


def example_image(name: str) -> np.ndarray:
    """An image that scikit-image ships (no download)."""
    from skimage import data

    return getattr(data, EXAMPLES[name])()


#: Gradio's own copies of served files: swept every hour, removed after a day.
CACHE_SWEEP = (3600, 86400)


def build_demo(predictor, store=None, downloads: SessionDownloads | None = None) -> gr.Blocks:
    downloads = downloads or SessionDownloads()
    with gr.Blocks(title="fcanet: click to segment", delete_cache=CACHE_SWEEP) as demo:
        session = gr.State(Session())
        gr.Markdown("## Click on an object to cut it out\nFirst click (gold ring) = the object. "
                    "Then click what is still wrong: **positive** adds, **negative** removes "
                    "(keys **n** / **p** switch the mode).")
        with gr.Row():
            with gr.Column(scale=3):
                image = gr.Image(type="numpy", format="png", label="Image (click on it)", elem_id="canvas",
                                 sources=["upload", "clipboard"], interactive=True)
            with gr.Column(scale=1):
                example = gr.Dropdown(list(EXAMPLES), value=None, label="Or pick an example", elem_id="example")
                mode = gr.Radio([h.POSITIVE, h.NEGATIVE], value=h.POSITIVE, label="Click mode", elem_id="click-mode")
                sis = gr.Checkbox(value=True, label="SIS: keep only clicked parts")
                opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Mask opacity")
                with gr.Row():
                    undo = gr.Button("Undo last click")
                    reset = gr.Button("Reset clicks")
                status = gr.Markdown(h.status(Session()), elem_id="status")
                mask_png = gr.File(label="Mask PNG", elem_id="mask-png")
                mask_json = gr.File(label="Mask COCO RLE JSON", elem_id="mask-json")
                save = gr.Button("Save correction", variant="primary")
                saved = gr.Markdown("", elem_id="saved")

        outputs = [session, image, status, mask_png, mask_json]

        def show(s: Session, alpha: float, request: gr.Request | None, message: str | None = None):
            files = (None, None)
            if s.mask is not None:
                # The session's own folder, overwritten by each click (gradio_app/downloads.py).
                files = h.export_files(s, str(downloads.folder(getattr(request, "session_hash", None))))
            text = h.status(s) if message is None else f"**{message}**"
            return s, h.view(s, alpha), text, files[0], files[1]

        def failed(s: Session, alpha: float, exc: h.AppError):
            gr.Warning(str(exc))
            return (s, h.view(s, alpha), f"**{exc}**", gr.skip(), gr.skip())

        def on_undo(s: Session, alpha: float, use_sis: bool, request: gr.Request):
            try:
                return show(h.undo(predictor, s, use_sis), alpha, request)
            except h.AppError as exc:
                return failed(s, alpha, exc)

        def on_reset(s: Session, alpha: float, request: gr.Request):
            return show(h.reset(s), alpha, request)

        def on_sis(s: Session, alpha: float, use_sis: bool, request: gr.Request):
            try:
                return show(h.toggle_sis(predictor, s, use_sis), alpha, request)
            except h.AppError as exc:
                return failed(s, alpha, exc)

        def on_upload(img, alpha, request: gr.Request):
            try:
                return show(h.upload(img), alpha, request)
            except h.AppError as exc:
                gr.Warning(str(exc))
                return Session(), None, f"**{exc}**", None, None

        def on_example(name, alpha, request: gr.Request):
            if not name:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return on_upload(example_image(name), alpha, request)

        def on_select(s: Session, alpha: float, m: str, use_sis: bool, evt: gr.SelectData, request: gr.Request):
            # A generator handler: the network's mask is on the page at once, the refined one
            # replaces it when ready (Predictor.predict_stages: one forward pass for both).
            x, y = evt.index[0], evt.index[1]
            try:
                for stage in h.add_click_progressive(predictor, s, x, y, m, use_sis):
                    if stage.refining:
                        yield stage, h.view(stage, alpha), h.status(stage), gr.skip(), gr.skip()
                    else:
                        yield show(stage, alpha, request)
            except h.AppError as exc:
                gr.Warning(str(exc))
                yield s, h.view(s, alpha), f"**{exc}**", gr.skip(), gr.skip()

        image.upload(on_upload, [image, opacity], outputs)
        example.change(on_example, [example, opacity], outputs)
        image.select(on_select, [session, opacity, mode, sis], outputs)
        undo.click(on_undo, [session, opacity, sis], outputs)
        reset.click(on_reset, [session, opacity], outputs)
        sis.change(on_sis, [session, opacity, sis], outputs)

        def on_leave(request: gr.Request):
            downloads.remove(request.session_hash)

        demo.unload(on_leave)
        opacity.change(lambda s, a: h.view(s, a), [session, opacity], [image])

        def on_save(s: Session):
            try:
                return f"Saved correction `{h.save_correction(store, s)}`."
            except h.AppError as exc:
                gr.Warning(str(exc))
                return f"**{exc}**"

        save.click(on_save, [session], [saved])

        def segment(image: gr.FileData, clicks: list, request: gr.Request) -> gr.FileData:
            """Headless segmentation: an image and [[x, y, is_positive], ...] in original pixels ->
            the 0/255 mask PNG at the image's own size."""
            path = image["path"] if isinstance(image, dict) else getattr(image, "path", image)
            mask = h.segment(predictor, Path(path), clicks)
            out = downloads.folder(getattr(request, "session_hash", None)) / "segment.png"
            Image.fromarray(mask).save(out)
            return gr.FileData(path=str(out))

        gr.api(segment, api_name="segment")
    return demo
