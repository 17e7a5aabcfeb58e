"""The corrections store: records in a database, images and masks as files.

One store serves both front ends (the Label Studio backend and the Gradio app) and the
fine-tuning job. Writes are ordered so that a crash never loses or half-writes what was
acknowledged: files first (atomic, content-addressed), then one database transaction
that points at them. A crash between the two leaves only an unreferenced file.

Durability under concurrency: once `add_annotation` returns, the records and every file
they name exist and stay, whatever other writers do. Files are shared by content, so a
file one writer no longer needs may be the file another writer is about to reference.
Every transaction that references files first locks them (`db.lock_files`) and checks,
under the lock, that they are still on disk (writing them again if a clean-up removed them
meanwhile); a file is deleted only under the same lock, after a committed transaction
stopped using it, and only when no committed record references it. So a deletion and a
new reference to the same file never interleave, on SQLite and on PostgreSQL alike.

Updates keep what they do not replace: an object submitted with keep_clicks and no clicks
keeps the clicks stored before for the same object (same region_id, or the same position
and labels when region ids are unknown).

Idempotency: a submission with an annotation id replaces everything earlier stored under
the same (source, project, annotation_id), so a repeated or updated webhook never
duplicates. Without an annotation id every submission is a new record.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ImageError
from ..image_io import load_image
from .database import PostgresDatabase, SqliteDatabase
from .files import FileStore, decode_mask_png, encode_image_png, encode_mask_png, image_suffix
from .records import (
    CorrectionRecord,
    ObjectSubmission,
    StoreError,
    StoreUnavailableError,
    check_object,
    check_optional_id,
    check_provenance,
    check_source,
    clicks_from_json,
    clicks_to_json,
    dropped_from_json,
    dropped_to_json,
)

SQLITE_NAME = "corrections.sqlite3"
FILES_DIR_NAME = "files"
_MAX_REF_LENGTH = 4000
_RECORD_COLUMNS = (
    "id, source, project, task_id, annotation_id, image_sha256, image_path, image_ref, clicks, "
    "mask_path, height, width, labels, author, created_at, updated_at, object_index, region_id, dropped_clicks, "
    "model_version, click_count, lead_time_s"
)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def open_store(location: str | os.PathLike, *, files_dir: str | os.PathLike | None = None) -> "CorrectionStore":
    """A directory -> SQLite at <dir>/corrections.sqlite3, files under <dir>/files (or files_dir).
    A postgresql:// URL -> PostgreSQL records, files under files_dir (required: every
    replica must see the same files, e.g. a shared volume)."""
    text = os.fspath(location)
    if text.startswith(("postgresql://", "postgres://")):
        if files_dir is None:
            raise StoreError("a PostgreSQL store needs files_dir: the folder (shared by all replicas) "
                             "where images and masks are kept")
        return CorrectionStore(PostgresDatabase(text), FileStore(files_dir), location=text)
    if "://" in text:
        raise StoreError(f"unknown store location {text!r}: give a directory or a postgresql:// URL")
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"the store location {folder} is a file; give a directory")
    folder.mkdir(parents=True, exist_ok=True)
    files = FileStore(files_dir if files_dir is not None else folder / FILES_DIR_NAME)
    return CorrectionStore(SqliteDatabase(folder / SQLITE_NAME), files, location=str(folder))


class CorrectionStore:
    """Use `open_store`; see the module docstring for the guarantees."""

    def __init__(self, db: SqliteDatabase | PostgresDatabase, files: FileStore, location: str):
        self.db = db
        self.files = files
        self.location = location
        files.sweep_stale_tmp()

    @property
    def kind(self) -> str:
        """"sqlite" or "postgresql"."""
        return self.db.kind

    @property
    def files_dir(self) -> Path:
        return self.files.root

    def __repr__(self) -> str:
        return f"CorrectionStore({self.db.kind}: {self.db.describe()}, files={self.files.root})"

    # ------------------------------------------------------------------------- writing
    def add(
        self,
        *,
        source: str,
        image: np.ndarray | bytes | None,
        clicks: Sequence[Any],
        mask: np.ndarray,
        image_ref: str | None = None,
        project: str | int | None = None,
        task_id: str | int | None = None,
        annotation_id: str | int | None = None,
        labels: Sequence[str] = (),
        author: str | None = None,
        model_version: str | None = None,
        click_count: int | None = None,
        lead_time_s: float | None = None,
    ) -> str:
        """Store one object; returns its record id. See `add_annotation` for the rules."""
        obj = {"mask": mask, "clicks": clicks, "labels": labels}
        if click_count is not None:
            obj["click_count"] = click_count
        return self.add_annotation(
            source=source, image=image, image_ref=image_ref, project=project, task_id=task_id,
            annotation_id=annotation_id, author=author, model_version=model_version, lead_time_s=lead_time_s,
            objects=[obj],
        )[0]

    def add_annotation(
        self,
        *,
        source: str,
        image: np.ndarray | bytes | None,
        objects: Sequence[Mapping[str, Any]],
        image_ref: str | None = None,
        project: str | int | None = None,
        task_id: str | int | None = None,
        annotation_id: str | int | None = None,
        author: str | None = None,
        model_version: str | None = None,
        lead_time_s: float | None = None,
    ) -> list[str]:
        """Store the objects of one annotation on one image; returns their record ids in order.

        objects: each {"mask": (H, W) bool, "clicks": ordered clicks (may be empty), "labels": [...]},
        optionally "region_id" (the front end's object id), "dropped_clicks" (a list of
        {"reason": ..., ...}: clicks the caller could not store) and "keep_clicks" (True: an
        object with no clicks and none dropped keeps the clicks stored before for it).
        image: (H, W, 3) uint8 or encoded bytes of the same H, W (stored by sha256), or None
        when image_ref (a URL or path) is all that is known.
        With an annotation_id the objects replace whatever was stored under (source, project,
        annotation_id) before, and keep its record ids and created_at.
        Provenance: author (the labeler), model_version (the model whose predictions drew the
        masks), lead_time_s (seconds spent on the annotation); each object may carry
        "click_count" (default: the number of its clicks).
        Raises StoreError on bad input (nothing is written then) and StoreUnavailableError
        when the files or the database cannot be written.
        """
        source = check_source(source)
        project = check_optional_id("project", project)
        task_id = check_optional_id("task_id", task_id)
        annotation_id = check_optional_id("annotation_id", annotation_id)
        if author is not None and (not isinstance(author, str) or len(author) > 200):
            raise StoreError(f"author must be a string of at most 200 characters, got {author!r}")
        if image_ref is not None and (not isinstance(image_ref, str) or not image_ref or len(image_ref) > _MAX_REF_LENGTH):
            raise StoreError(f"image_ref must be a non-empty string of at most {_MAX_REF_LENGTH} characters")
        model_version, _, lead_time_s = check_provenance(model_version, None, lead_time_s)
        if not isinstance(objects, Sequence) or not objects:
            raise StoreError("a submission needs at least one object (a mask)")
        checked, click_counts = [], []
        for i, obj in enumerate(objects):
            if not isinstance(obj, Mapping):
                raise StoreError(f"object {i + 1} must be a mapping with mask, clicks and labels")
            try:
                checked.append(check_object(obj.get("mask"), obj.get("clicks", ()), obj.get("labels", ()),
                                            region_id=obj.get("region_id"),
                                            dropped_clicks=obj.get("dropped_clicks"),
                                            keep_clicks=obj.get("keep_clicks", False)))
                click_counts.append(check_provenance(None, obj.get("click_count", len(checked[-1].clicks)), None)[1])
            except StoreError as exc:
                raise StoreError(f"object {i + 1}: {exc}") from None
        height, width = checked[0].mask.shape
        for i, obj in enumerate(checked[1:], start=2):
            if obj.mask.shape != (height, width):
                raise StoreError(f"object {i}'s mask is {obj.mask.shape[1]}x{obj.mask.shape[0]}, "
                                 f"object 1's is {width}x{height}: one annotation is on one image")
        image_bytes = self._image_bytes(image, height, width)
        if image_bytes is None and image_ref is None:
            raise StoreError("a correction needs its image: an (H, W, 3) array, encoded bytes or an image_ref")

        # Files first (outside any lock: the slow part): after a crash here the database still
        # points at the old, complete files.
        files = []  # (relative path, bytes) of every file the new records name
        try:
            image_sha = image_path = None
            if image_bytes is not None:
                image_sha, image_path = self.files.put("images", image_bytes, image_suffix(image_bytes))
                files.append((image_path, image_bytes))
            mask_paths = []
            for o in checked:
                data = encode_mask_png(o.mask)
                mask_paths.append(self.files.put("masks", data, ".png")[1])
                files.append((mask_paths[-1], data))
        except OSError as exc:
            raise StoreUnavailableError(f"cannot write to the store's files at {self.files.root}: {exc}") from exc

        now = utc_now()
        dedup_key = "\x1f".join((source, project or "", annotation_id)) if annotation_id else None
        with self.db.write() as tx:
            self._hold_files(tx, files)
            old = tx.all("SELECT id, mask_path, image_sha256, image_path, object_index, region_id, clicks, "
                         "dropped_clicks, labels, click_count FROM corrections WHERE dedup_key = ? ORDER BY object_index",
                         (dedup_key,)) if dedup_key else []
            if image_path is None and old:
                # An update that carries no image keeps the image stored before for this annotation.
                image_sha, image_path = old[0]["image_sha256"], old[0]["image_path"]
            ids = []
            for index, (obj, mask_path) in enumerate(zip(checked, mask_paths)):
                clicks_json, dropped_json = clicks_to_json(obj.clicks), dropped_to_json(obj.dropped_clicks)
                click_count = click_counts[index]
                if obj.keep_clicks and not obj.clicks:
                    before = _same_object(old, index, obj)
                    if before is not None:
                        # The new drops are recorded beside the old ones; nothing stored is lost.
                        clicks_json = before["clicks"]
                        dropped_json = dropped_to_json([*dropped_from_json(before["dropped_clicks"]),
                                                        *obj.dropped_clicks])
                        if before.get("click_count") is not None:
                            click_count = before["click_count"]
                row = tx.one(
                    f"INSERT INTO corrections ({_RECORD_COLUMNS}, dedup_key) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (dedup_key, object_index) DO UPDATE SET "
                    "task_id = excluded.task_id, image_sha256 = excluded.image_sha256, "
                    "image_path = excluded.image_path, image_ref = excluded.image_ref, "
                    "clicks = excluded.clicks, mask_path = excluded.mask_path, height = excluded.height, "
                    "width = excluded.width, labels = excluded.labels, author = excluded.author, "
                    "updated_at = excluded.updated_at, region_id = excluded.region_id, "
                    "dropped_clicks = excluded.dropped_clicks, model_version = excluded.model_version, "
                    "click_count = excluded.click_count, lead_time_s = excluded.lead_time_s "
                    "RETURNING id",
                    (uuid.uuid4().hex, source, project, task_id, annotation_id, image_sha, image_path, image_ref,
                     clicks_json, mask_path, height, width, json.dumps(list(obj.labels)), author,
                     now, now, index, obj.region_id, dropped_json, model_version, click_count, lead_time_s,
                     dedup_key),
                )
                ids.append(row["id"])
            if dedup_key:
                tx.run("DELETE FROM corrections WHERE dedup_key = ? AND object_index >= ?", (dedup_key, len(checked)))
        self._forget_unused_masks({r["mask_path"] for r in old} - set(mask_paths))
        return ids

    def attach_image(self, record_id: str, image: np.ndarray | bytes) -> CorrectionRecord:
        """Store the image of a record that so far had only a reference (and of the other
        objects of its annotation); returns the updated record."""
        record = self.get(record_id)
        image_bytes = self._image_bytes(image, record.height, record.width)
        try:
            sha, path = self.files.put("images", image_bytes, image_suffix(image_bytes))
        except OSError as exc:
            raise StoreUnavailableError(f"cannot write to the store's files at {self.files.root}: {exc}") from exc
        with self.db.write() as tx:
            self._hold_files(tx, [(path, image_bytes)])
            key_row = tx.one("SELECT dedup_key FROM corrections WHERE id = ?", (record_id,))
            if key_row and key_row["dedup_key"]:
                tx.run("UPDATE corrections SET image_sha256 = ?, image_path = ? WHERE dedup_key = ?",
                       (sha, path, key_row["dedup_key"]))
            else:
                tx.run("UPDATE corrections SET image_sha256 = ?, image_path = ? WHERE id = ?", (sha, path, record_id))
        return self.get(record_id)

    def remove(self, record_id: str) -> None:
        """Delete one record (its files go when nothing else uses them)."""
        record = self.get(record_id)
        with self.db.write() as tx:
            tx.run("DELETE FROM corrections WHERE id = ?", (record_id,))
        self._forget_unused_masks({record.mask_path})

    def _image_bytes(self, image: Any, height: int, width: int) -> bytes | None:
        """Validated bytes to store for an image argument (None stays None)."""
        if image is None:
            return None
        try:
            if isinstance(image, np.ndarray):
                if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                    raise StoreError(f"an image array must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
                data, rgb = encode_image_png(np.ascontiguousarray(image)), image
            elif isinstance(image, (bytes, bytearray, memoryview)):
                data = bytes(image)
                rgb = load_image(data)
            else:
                raise StoreError(f"image must be an (H, W, 3) uint8 array, encoded bytes or None, "
                                 f"got {type(image).__name__}")
        except ImageError as exc:
            raise StoreError(f"the image cannot be read: {exc}") from None
        if rgb.shape[:2] != (height, width):
            raise StoreError(f"the image is {rgb.shape[1]}x{rgb.shape[0]} but the mask is {width}x{height}")
        return data

    def _hold_files(self, tx, files: Sequence[tuple[str, bytes]]) -> None:
        """Lock the files a transaction is about to reference and make sure they are on disk:
        a clean-up may have removed one between our write and this lock (shared content)."""
        self.db.lock_files(tx, [path for path, _ in files])
        try:
            for path, data in files:
                self.files.ensure(path, data)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot write to the store's files at {self.files.root}: {exc}") from exc

    def _forget_unused_masks(self, paths: Iterable[str]) -> None:
        """Delete mask files no committed record names, each under its file lock (see the
        module docstring). Best effort: a leftover file costs disk space, never correctness."""
        for path in sorted(paths):
            try:
                with self.db.write() as tx:
                    self.db.lock_files(tx, [path])
                    if not tx.one("SELECT 1 AS used FROM corrections WHERE mask_path = ? LIMIT 1", (path,)):
                        self.files.remove(path)
            except (OSError, StoreUnavailableError):
                pass

    # ------------------------------------------------------------------------- reading
    def list(
        self,
        *,
        source: str | None = None,
        project: str | int | None = None,
        task_id: str | int | None = None,
        annotation_id: str | int | None = None,
        labeler: str | None = None,
        model_version: str | None = None,
        min_clicks: int | None = None,
        max_clicks: int | None = None,
        min_seconds: float | None = None,
        max_seconds: float | None = None,
    ) -> list[CorrectionRecord]:
        """Records in the order they were first stored, optionally filtered (labeler: the
        author; clicks and seconds bounds are inclusive and leave out records without the value)."""
        where, params = [], []
        for column, value in (("source", source), ("project", project), ("task_id", task_id),
                              ("annotation_id", annotation_id), ("author", labeler),
                              ("model_version", model_version)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(str(value))
        for column, op, value in (("click_count", ">=", min_clicks), ("click_count", "<=", max_clicks),
                                  ("lead_time_s", ">=", min_seconds), ("lead_time_s", "<=", max_seconds)):
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        sql = f"SELECT {_RECORD_COLUMNS} FROM corrections"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, object_index, id"
        with self.db.read() as tx:
            return [_record(row) for row in tx.all(sql, params)]

    def get(self, record_id: str) -> CorrectionRecord:
        with self.db.read() as tx:
            row = tx.one(f"SELECT {_RECORD_COLUMNS} FROM corrections WHERE id = ?", (str(record_id),))
        if row is None:
            raise StoreError(f"no correction with id {record_id!r} in the store")
        return _record(row)

    def count(self) -> int:
        with self.db.read() as tx:
            return int(tx.one("SELECT COUNT(*) AS n FROM corrections")["n"])

    def load_image(self, record: CorrectionRecord) -> np.ndarray | None:
        """(H, W, 3) uint8 of the stored image, or None when only a reference is known."""
        if record.image_path is None:
            return None
        return load_image(self.files.read(record.image_path))

    def image_file(self, record: CorrectionRecord) -> Path | None:
        """The stored image's path on disk, or None."""
        return self.files.root / record.image_path if record.image_path else None

    def load_mask(self, record: CorrectionRecord) -> np.ndarray:
        """(H, W) bool mask of the record."""
        mask = decode_mask_png(self.files.read(record.mask_path))
        if mask.shape != (record.height, record.width):
            raise StoreError(f"the mask file of {record.id} is {mask.shape}, the record says "
                             f"{(record.height, record.width)}")
        return mask

    # ------------------------------------------------------------------------- model registry
    def register_model(self, version: str, path: str | os.PathLike, metrics: Mapping[str, Any]) -> None:
        """Record a trained model; registering the same version and path again is a no-op."""
        if not isinstance(version, str) or not version.strip() or len(version) > 200:
            raise StoreError(f"a model version must be a non-empty string, got {version!r}")
        try:
            metrics_json = json.dumps(dict(metrics), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"model metrics must be JSON-serialisable: {exc}") from None
        path = os.fspath(path)
        with self.db.write() as tx:
            existing = tx.one("SELECT path FROM models WHERE version = ?", (version,))
            if existing and existing["path"] != path:
                raise StoreError(f"model version {version!r} is already registered with {existing['path']}")
            if existing:
                tx.run("UPDATE models SET metrics = ? WHERE version = ?", (metrics_json, version))
            else:
                tx.run("INSERT INTO models (version, path, metrics, registered_at) VALUES (?, ?, ?, ?)",
                       (version, path, metrics_json, utc_now()))

    def list_models(self) -> list[dict[str, Any]]:
        """Registered models, oldest first, each with `promoted` (True for the one served)."""
        current = (self.promoted_model() or {}).get("version")
        with self.db.read() as tx:
            rows = tx.all("SELECT version, path, metrics, registered_at FROM models ORDER BY registered_at, version")
        return [{**r, "metrics": json.loads(r["metrics"]), "promoted": r["version"] == current} for r in rows]

    def promote(self, version: str) -> None:
        """Make a registered version the one every replica serves."""
        with self.db.write() as tx:
            if not tx.one("SELECT 1 AS known FROM models WHERE version = ?", (version,)):
                raise StoreError(f"model version {version!r} is not registered")
            current = _active_promotion(tx)
            if current and current["version"] == version:
                return
            tx.run("INSERT INTO promotions (version, promoted_at) VALUES (?, ?)", (version, utc_now()))

    def rollback(self) -> str:
        """Undo the latest promotion; returns the version promoted now."""
        with self.db.write() as tx:
            current = _active_promotion(tx)
            if current is None:
                raise StoreError("no model is promoted, so there is nothing to roll back")
            previous = tx.one("SELECT seq, version FROM promotions WHERE rolled_back_at IS NULL AND seq < ? "
                              "AND version <> ? ORDER BY seq DESC LIMIT 1", (current["seq"], current["version"]))
            if previous is None:
                raise StoreError(f"{current['version']} is the only model ever promoted: promote another "
                                 "version instead of rolling back")
            tx.run("UPDATE promotions SET rolled_back_at = ? WHERE rolled_back_at IS NULL AND seq > ?",
                   (utc_now(), previous["seq"]))
            return previous["version"]

    def promoted_model(self) -> dict[str, Any] | None:
        """{version, path, metrics, registered_at, promoted_at} of the served model, or None."""
        with self.db.read() as tx:
            current = _active_promotion(tx)
            if current is None:
                return None
            row = tx.one("SELECT version, path, metrics, registered_at FROM models WHERE version = ?",
                         (current["version"],))
        return {**row, "metrics": json.loads(row["metrics"]), "promoted_at": current["promoted_at"]}

    # ------------------------------------------------------------------------- training requests
    def add_training_request(self, project: str | int | None, payload: Mapping[str, Any]) -> str:
        """Record a request to fine-tune (e.g. Label Studio's START_TRAINING); returns its id."""
        project = check_optional_id("project", project)
        try:
            payload_json = json.dumps(dict(payload or {}), sort_keys=True, default=str)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"a training request payload must be a JSON object: {exc}") from None
        request_id = uuid.uuid4().hex
        with self.db.write() as tx:
            tx.run("INSERT INTO training_requests (id, project, payload, status, created_at) VALUES (?, ?, ?, ?, ?)",
                   (request_id, project, payload_json, "requested", utc_now()))
        return request_id

    def set_training_request_status(self, request_id: str, status: str) -> None:
        with self.db.write() as tx:
            if not tx.run("UPDATE training_requests SET status = ? WHERE id = ?", (status, request_id)):
                raise StoreError(f"no training request with id {request_id!r}")

    def list_training_requests(self) -> list[dict[str, Any]]:
        with self.db.read() as tx:
            rows = tx.all("SELECT id, project, payload, status, created_at FROM training_requests "
                          "ORDER BY created_at, id")
        return [{**r, "payload": json.loads(r["payload"])} for r in rows]


def _active_promotion(tx) -> dict[str, Any] | None:
    return tx.one("SELECT seq, version, promoted_at FROM promotions WHERE rolled_back_at IS NULL "
                  "ORDER BY seq DESC LIMIT 1")


def _record(row: Mapping[str, Any]) -> CorrectionRecord:
    return CorrectionRecord(
        id=row["id"], source=row["source"], project=row["project"], task_id=row["task_id"],
        annotation_id=row["annotation_id"], image_sha256=row["image_sha256"], image_path=row["image_path"],
        image_ref=row["image_ref"], clicks=clicks_from_json(row["clicks"]), mask_path=row["mask_path"],
        height=int(row["height"]), width=int(row["width"]), labels=tuple(json.loads(row["labels"])),
        author=row["author"], created_at=row["created_at"], updated_at=row["updated_at"],
        object_index=int(row["object_index"]), region_id=row.get("region_id"),
        dropped_clicks=dropped_from_json(row.get("dropped_clicks")), model_version=row.get("model_version"),
        click_count=None if row.get("click_count") is None else int(row["click_count"]),
        lead_time_s=None if row.get("lead_time_s") is None else float(row["lead_time_s"]),
    )


def _same_object(old: Sequence[Mapping[str, Any]], index: int, obj: ObjectSubmission) -> Mapping[str, Any] | None:
    """The stored row of the annotation that is the same object as obj at position index:
    the same region id when both have one, else the same position with the same labels."""
    if obj.region_id is not None:
        for row in old:
            if row["region_id"] == obj.region_id:
                return row
        if any(row["region_id"] is not None for row in old):
            return None  # region ids are known and none matches: a new object
    for row in old:
        if int(row["object_index"]) == index and tuple(json.loads(row["labels"])) == obj.labels:
            return row
    return None


__all__ = ["open_store", "CorrectionStore", "CorrectionRecord", "ObjectSubmission", "StoreError",
           "StoreUnavailableError"]
