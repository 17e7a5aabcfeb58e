"""The app's downloads: one folder per browser session, overwritten by each click, removed when
the session ends; Gradio's own cache is swept."""

from pathlib import Path

import numpy as np
import pytest

from gradio_app import handlers as h
from gradio_app.downloads import SessionDownloads
from gradio_app.state import Session
from model import Predictor


@pytest.fixture()
def downloads(tmp_path):
    return SessionDownloads(tmp_path / "downloads")


def test_each_click_overwrites_the_sessions_two_files(downloads):
    predictor = Predictor.for_tests()
    session = h.upload(np.full((48, 64, 3), 120, np.uint8))
    for x in (20, 30, 40, 10, 50):
        session = h.add_click(predictor, session, x, 24, h.POSITIVE, True)
        h.export_files(session, str(downloads.folder("abc")))
    files = sorted(p.name for p in downloads.folder("abc").iterdir())
    assert files == ["mask.png", "mask_coco_rle.json"]
    assert downloads.sessions() == ["abc"]


def test_a_session_that_ends_leaves_nothing_and_ids_cannot_escape_the_root(downloads):
    h.export_files(Session(image=np.zeros((4, 4, 3), np.uint8), mask=np.ones((4, 4), bool)),
                   str(downloads.folder("../../etc")))
    assert all(p.parent == downloads.root for p in downloads.root.iterdir())
    downloads.remove("../../etc")
    assert downloads.sessions() == []
    downloads.close()
    assert not downloads.root.exists()


def test_the_app_removes_a_session_folder_on_unload_and_sweeps_gradios_cache(downloads):
    from gradio_app.app import CACHE_SWEEP, build_demo

    demo = build_demo(Predictor.for_tests(), None, downloads)
    assert demo.delete_cache == CACHE_SWEEP
    unloads = [d for d in demo.fns.values() if "unload" in [t[1] for t in d.targets]]
    assert unloads, "no unload handler: session folders would outlive their sessions"
    downloads.folder("s1")

    class Request:
        session_hash = "s1"

    unloads[0].fn(Request())
    assert downloads.sessions() == []


def test_a_root_the_app_made_itself_goes_with_it():
    import gc
    import subprocess
    import sys

    downloads = SessionDownloads()
    root = downloads.root
    downloads.folder("s1")
    del downloads
    gc.collect()
    assert not root.exists()
    # ... and when the process ends without closing it (Ctrl-C on `fcanet demo`).
    code = ("from gradio_app.downloads import SessionDownloads; d = SessionDownloads(); "
            "d.folder('s1'); print(d.root)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() and not Path(out.strip()).exists()
