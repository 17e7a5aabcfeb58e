"""Where the app writes what a browser session downloads: one folder per session, bounded.

Every click re-exports the mask (PNG and COCO RLE JSON) for the download buttons; the files go
into the session's own folder under one root and overwrite the previous click's, so a session
holds two files however long it clicks. The folder is removed when the browser session ends
(Gradio's unload event). A root this class made itself is removed when the app's process exits
(or the object is collected); a root passed in is removed by `close()`. Gradio serves its own
copies from its cache, which `build_demo` bounds with `delete_cache`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import weakref
from pathlib import Path


class SessionDownloads:
    def __init__(self, root: str | Path | None = None):
        if root is None:
            self.root = Path(tempfile.mkdtemp(prefix="fcanet-app-"))
            # Runs at interpreter exit too (Ctrl-C on `fcanet demo`), so no fcanet-app-* is left.
            weakref.finalize(self, shutil.rmtree, str(self.root), True)
        else:
            self.root = Path(root)
            self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, session_id: str | None) -> Path:
        """The session's folder (created on demand); the id is reduced to a safe file name."""
        name = re.sub(r"[^A-Za-z0-9_-]", "_", session_id or "anonymous")[:64] or "anonymous"
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remove(self, session_id: str | None) -> None:
        """Forget a session's files (its browser tab closed)."""
        shutil.rmtree(self.folder(session_id), ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def sessions(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.exists() else []
