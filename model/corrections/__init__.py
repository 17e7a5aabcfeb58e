"""The corrections store: what labelers fixed, kept for fine-tuning and export.

    from model.corrections import open_store
    store = open_store("fcanet-data")                    # SQLite + files under the folder
    store = open_store("postgresql://...", files_dir="/shared/fcanet-files")   # replicas
    record_id = store.add(source="gradio", image=rgb, clicks=[Click(10, 20)], mask=mask)

See `store.py` for the guarantees (atomic, idempotent, crash-safe) and `coco.py` for export.
"""

from .records import CorrectionRecord, StoreError, StoreUnavailableError
from .store import CorrectionStore, open_store

__all__ = ["open_store", "CorrectionStore", "CorrectionRecord", "StoreError", "StoreUnavailableError"]
