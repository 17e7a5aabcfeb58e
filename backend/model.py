"""The Label Studio ML backend model: `setup`, `predict(tasks, context)`, `fit(event, data)`.

One instance per process holds the one predictor (loaded once) and can swap it atomically
(`swap_predictor`): a request reads the predictor once at its start, so it runs entirely on
one model and reports that model's version. Coordinates: Label Studio percent at the
boundary (see `keypoints.py`), pixels of the original image everywhere inside.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from model import ClickError, max_image_pixels, validate_clicks

from .click_memory import ClickMemory, labeler_of
from .errors import BadRequest, RequestError, describe
from .images import ImageFetcher
from .keypoints import (SmartKeypoint, clicks_in_image, finite_number, group_by_label, parse_keypoints,
                        parse_keypoints_lenient, to_clicks)
from .label_config import LabelConfig, parse_label_config, shipped_label_config
from .training import TrainingLauncher

log = logging.getLogger(__name__)

SOURCE = "label_studio"
#: Default of FCANET_MAX_ANNOTATION_PIXELS: all brushes of one annotation together (a bool
#: byte each once decoded), e.g. 4 masks at the image limit or 40 objects on a 10 MP photo.
DEFAULT_MAX_ANNOTATION_PIXELS = 400_000_000
ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


def project_id(value: Any) -> str | None:
    """Label Studio sends a project as 7, "7.1712345678" (id.created timestamp) or {"id": 7, ...}."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRequest(f"project must be an id, got {type(value).__name__}")
    return str(value).split(".", 1)[0]


class FcanetModel:
    """FCA-Net as a Label Studio ML backend."""

    def __init__(self, predictor, *, store, fetcher: ImageFetcher, memory: ClickMemory,
                 launcher: TrainingLauncher, train_every: int = 0,
                 max_annotation_pixels: int = DEFAULT_MAX_ANNOTATION_PIXELS, image_workers: int = 2):
        self._predictor = predictor
        #: Images fetched after a webhook answered (attach_image) download and decode at most this
        #: many at once (the others wait), like predictions (FCANET_PREDICT_WORKERS in the app).
        self._attach_slots = threading.BoundedSemaphore(max(1, int(image_workers)))
        #: Most mask pixels one webhook may make us decode (all its brushes together).
        self.max_annotation_pixels = int(max_annotation_pixels)
        #: ... and most mask pixels all webhooks together hold decoded at once (they wait for it).
        self.decode_budget = PixelBudget(self.max_annotation_pixels)
        #: Start a fine-tuning job after this many newly stored annotations (0: only on START_TRAINING).
        self.train_every = int(train_every)
        self._new_corrections = 0
        self._count_lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self.store = store
        self.fetcher = fetcher
        self.memory = memory
        self.launcher = launcher
        self._configs: dict[str, str] = {}

    # ------------------------------------------------------------------------- the model
    @property
    def predictor(self):
        return self._predictor

    @property
    def model_version(self) -> str:
        return self._predictor.model_version

    def swap_predictor(self, new) -> Any:
        """Serve `new` from the next request on; returns the old predictor."""
        if not callable(getattr(new, "predict", None)) or not isinstance(getattr(new, "model_version", None), str):
            raise TypeError("a predictor needs predict(image, clicks) and a model_version string")
        with self._swap_lock:
            old, self._predictor = self._predictor, new
        log.info("now serving model %s (was %s)", new.model_version, old.model_version)
        return old

    # ------------------------------------------------------------------------- setup
    def setup(self, project: Any = None, label_config: str | None = None, **extra: Any) -> dict[str, Any]:
        """Remember the project's labeling config (checked now, so a bad one fails at connect time)."""
        pid = project_id(project)
        if label_config is not None:
            if not isinstance(label_config, str):
                raise BadRequest("schema (the labeling config) must be a string")
            config = parse_label_config(label_config)
            if not config.brushes:
                raise RequestError("the labeling config needs a <BrushLabels> tag for the masks "
                                   "(see backend/label_config.xml)")
            if pid is not None:
                self._configs[pid] = label_config
        return {"model_version": self.model_version}

    def _config(self, pid: str | None, label_config: Any) -> LabelConfig:
        if label_config is not None and not isinstance(label_config, str):
            raise BadRequest("label_config must be a string")
        xml = label_config or (self._configs.get(pid) if pid else None) or shipped_label_config()
        return parse_label_config(xml)

    # ------------------------------------------------------------------------- predict
    def predict(self, tasks: Any, context: Any = None, *, project: Any = None,
                label_config: str | None = None, refine: bool | Any = True, **kwargs: Any) -> list[Any]:
        """One prediction per task: {"result": [brush, ...], "score", "model_version", "refined"}.

        refine: False, or a callable that answers False when asked just before the forward pass,
        skips the graph cut (`Predictor.predict(refine=False)`); "refined" then says False, so a
        client (or whoever reads Label Studio's logs) can tell an answer made under load from one
        that was not. Label Studio passes the key through to its editor, which ignores it.

        Without keypoints in the context (a plain pre-annotation request) there is nothing
        to segment: the answer holds an empty list of predictions for each task, not an error.
        """
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            raise BadRequest("tasks must be a list of task objects")
        if context is None or (isinstance(context, dict) and not context.get("result")):
            # One empty list per task: Label Studio creates no prediction and logs no error.
            return [[] for _ in tasks]
        if not isinstance(context, dict):
            raise BadRequest(f"context must be an object with a 'result' list, got {type(context).__name__}")
        points = parse_keypoints(context.get("result"))
        if not points:
            raise RequestError("the context holds no keypoints: use the smart KeyPointLabels tool "
                               "(click inside the object, Alt+click outside)")
        if len(tasks) != 1:
            raise RequestError(f"an interactive prediction is for exactly one task, got {len(tasks)}")
        task = tasks[0]
        pid = project_id(project)
        config = self._config(pid, label_config)
        groups = group_by_label(points)
        targets = {key: config.brush_for(key[0], key[1]) for key in groups}  # unknown labels fail before any download

        data = task.get("data")
        if not isinstance(data, dict):
            raise BadRequest("the task has no 'data' object")
        image_key = config.image_key(next(iter(groups))[0])
        if image_key not in data:
            raise BadRequest(f"the task data has no {image_key!r} field (the labeling config's Image value)")
        image = self.fetcher.fetch(data[image_key])

        predictor = self._predictor  # one model for the whole request
        labeler = labeler_of(task)
        results, scores, refined = [], [], True
        for (to_name, label), group in groups.items():
            clicks = to_clicks(group, image.width, image.height)
            shared_key = (pid, str(task.get("id")), to_name, label, None)
            key = shared_key if labeler is None else shared_key[:-1] + (labeler,)
            session, sequence = self.memory.resolve(key, group, clicks,
                                                    fallback_key=None if labeler is None else shared_key)
            prediction = predictor.predict(image.rgb, sequence, refine=bool(refine() if callable(refine) else refine))
            self.memory.record_mask(session, prediction.mask)
            refined = refined and prediction.final
            score = float(prediction.probability[prediction.mask].mean()) if prediction.mask.any() else 0.0
            scores.append(score)
            target = targets[(to_name, label)]
            results.append(brush_result(prediction.mask, target.from_name, target.to_name, label,
                                        region_id=session.region_id, score=score))
        return [{"result": results, "score": float(np.mean(scores)), "model_version": predictor.model_version,
                 "refined": bool(refined)}]

    # ------------------------------------------------------------------------- fit (webhooks)
    def fit(self, event: str, data: dict[str, Any], *,
            defer: Callable[..., None] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Handle one webhook; never trains here (Label Studio waits at most one second).

        defer(fn, *args): run fn after the answer is sent (used to fetch and attach an image
        that was not in the cache); without it the record keeps only the image reference.
        """
        if event in ANNOTATION_EVENTS:
            return self._store_annotation(data, defer)
        if event == "START_TRAINING":
            pid = project_id(data.get("project"))
            job_id = self._start_training(pid, event)
            return {"status": "training requested", "job_id": job_id, "project": pid}
        if event == "ANNOTATIONS_DELETED":
            return self._delete_annotations(data)
        return {"status": "ignored", "action": event}

    def _start_training(self, project: str | None, event: str) -> str:
        """Hand a request to the launcher; the job continues from the model served now."""
        predictor = self._predictor
        with self._count_lock:
            self._new_corrections = 0
        return self.launcher.start({"project": project, "event": event, "model_version": predictor.model_version,
                                    "checkpoint": getattr(predictor, "checkpoint_path", None)})

    def _count_new_corrections(self, project: str | None, n: int) -> str | None:
        """Every `train_every` new corrections start a job (the job id), else None."""
        if self.train_every <= 0:
            return None
        with self._count_lock:
            self._new_corrections += n
            due = self._new_corrections >= self.train_every
        return self._start_training(project, f"every {self.train_every} corrections") if due else None

    def _store_annotation(self, data: dict[str, Any], defer) -> dict[str, Any]:
        annotation, task = data.get("annotation"), data.get("task")
        if not isinstance(annotation, dict):
            raise BadRequest("the webhook has no 'annotation' object")
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise BadRequest("the webhook has no 'task' object with 'data'")
        if annotation.get("id") is None:
            raise BadRequest("the annotation has no 'id'")
        project = data.get("project")
        pid = project_id(project if project is not None else annotation.get("project") or task.get("project"))
        if annotation.get("was_cancelled"):
            return {"status": "ignored", "reason": "the annotation was skipped"}
        result = annotation.get("result")
        if not isinstance(result, list):
            raise BadRequest("the annotation's 'result' must be a list")
        config = self._config(pid, project.get("label_config") if isinstance(project, dict) else None)
        brushes = [r for r in result if isinstance(r, dict) and r.get("type") == "brushlabels"]
        if not brushes:
            return {"status": "ignored", "reason": "the annotation has no brush mask"}
        # A bad keypoint costs only that click (recorded with its reason), never the mask.
        points, bad_points = parse_keypoints_lenient(result)
        keypoint_groups = group_by_label(points)
        brushes_per_label: dict[tuple, int] = {}
        for i, b in enumerate(brushes):
            key = (_name(b.get("to_name"), f"brush {i + 1}: to_name"), _brush_label(b))
            brushes_per_label[key] = brushes_per_label.get(key, 0) + 1

        image_ref = task["data"].get(config.image_key(_name(brushes[0].get("to_name"), "brush 1: to_name")))
        if not isinstance(image_ref, str) or not image_ref:
            raise BadRequest("the task data has no image reference for the labeling config's Image")
        cached = self.fetcher.cached(image_ref)
        pixels = self._check_brush_sizes(brushes, cached)

        # Decoded masks live until the store has written them; concurrent webhooks share one budget
        # of max_annotation_pixels, so many small requests cannot together allocate gigabytes.
        with self.decode_budget.hold(pixels):
            objects, notes = [], []
            for i, brush in enumerate(brushes):
                label = _brush_label(brush)
                if label is not None and label not in config.brush_labels():
                    raise RequestError(f"brush {i + 1} has the unknown label {describe(label)}: the labeling config "
                                       f"has {sorted(config.brush_labels())}")
                mask = decode_brush(brush, i)
                if not mask.any():
                    notes.append(f"brush {i + 1} is empty and was skipped")
                    continue
                height, width = mask.shape
                key = (brush.get("to_name"), label)
                # A keypoint whose to_name or label could not be read is noted on every brush it may
                # belong to, so that no submitted click disappears without a trace.
                dropped = [d for (to_name, kp_label), d in bad_points
                           if to_name in (key[0], None) and kp_label in (label, None)]
                clicks: list = []
                if key in keypoint_groups and brushes_per_label[key] == 1:
                    clicks, more = clicks_in_image(keypoint_groups[key], width, height)
                    dropped += more
                else:
                    remembered = self.memory.clicks_for_region(brush.get("id"))
                    if remembered:
                        try:
                            clicks = validate_clicks(remembered, width, height)
                        except ClickError as exc:
                            dropped += [{"click": n + 1, "x": c.x, "y": c.y, "positive": c.positive,
                                         "reason": f"the remembered clicks do not fit the mask: {exc}"}
                                        for n, c in enumerate(remembered)]
                            clicks = []
                # No usable click (only the brush, after a restart or once the click memory expired;
                # or every submitted click dropped): the clicks stored before for this object stay.
                keep_clicks = not clicks
                if dropped:
                    notes.append(f"brush {i + 1}: {len(dropped)} click(s) not stored, see the record's dropped_clicks")
                region_id = brush.get("id")
                objects.append({"mask": mask, "clicks": clicks, "labels": [label] if label else [],
                                "region_id": str(region_id)[:200] if isinstance(region_id, (str, int))
                                and region_id != "" and not isinstance(region_id, bool) else None,
                                "dropped_clicks": dropped, "keep_clicks": keep_clicks})
            if not objects:
                return {"status": "ignored", "reason": "every brush mask is empty", "notes": notes}

            height, width = objects[0]["mask"].shape
            image = cached.data if cached is not None and (cached.height, cached.width) == (height, width) else None
            completed_by = annotation.get("completed_by")
            if isinstance(completed_by, dict):
                completed_by = completed_by.get("email") or completed_by.get("id")
            lead_time = annotation.get("lead_time")
            if lead_time is not None:
                seconds = finite_number(lead_time)
                seconds = seconds if seconds is not None and seconds >= 0 else None
                if seconds is None:
                    notes.append(f"lead_time {describe(lead_time)} is not a number of seconds and was not stored")
                lead_time = seconds
            ids = self.store.add_annotation(
                source=SOURCE, image=image, image_ref=image_ref, objects=objects, project=pid,
                task_id=task.get("id"), annotation_id=annotation["id"],
                author=str(completed_by) if completed_by is not None else None,
                # The interactive predictions that drew the masks came from the model served now
                # (a promotion between the clicks and the submit is the rare exception).
                model_version=self._predictor.model_version, lead_time_s=lead_time,
            )
        image_state = "stored" if image is not None else "reference"
        if image is None and defer is not None:
            defer(self.attach_image, ids[0], image_ref)
            image_state = "pending"
        answer = {"status": "stored", "records": ids, "objects": len(objects), "image": image_state}
        job_id = self._count_new_corrections(pid, len(ids)) if data.get("action") != "ANNOTATION_UPDATED" else None
        if job_id is not None:
            answer["training_job"] = job_id
        if notes:
            answer["notes"] = notes
        return answer

    def _check_brush_sizes(self, brushes: list[dict[str, Any]], image) -> int:
        """The pixels of all brushes together; refuses, before any RLE is decoded, brushes whose
        declared size is over the image pixel limit, larger than the task image (when it is known:
        cached), not all the same, or together over max_annotation_pixels."""
        sizes = [brush_size(b, i) for i, b in enumerate(brushes)]
        width, height = sizes[0]
        for i, size in enumerate(sizes[1:], start=2):
            if size != sizes[0]:
                raise RequestError(f"brush {i} is {size[0]}x{size[1]}, brush 1 is {width}x{height}: the brushes of "
                                   "one annotation are on one image")
        if image is not None and width * height > image.width * image.height:
            raise RequestError(f"the brushes are {width}x{height}, larger than the task's image "
                               f"({image.width}x{image.height})")
        total = width * height * len(sizes)
        if total > self.max_annotation_pixels:
            raise RequestError(f"the annotation's {len(sizes)} brushes hold {total} pixels together, more than "
                               f"the limit of {self.max_annotation_pixels} (FCANET_MAX_ANNOTATION_PIXELS)",
                               status=413)
        return total

    def attach_image(self, record_id: str, image_ref: str) -> None:
        """Fetch a record's image and store it beside the record (after the webhook answered)."""
        try:
            with self._attach_slots:
                image = self.fetcher.fetch(image_ref)
                self.store.attach_image(record_id, image.data)
        except Exception as exc:  # noqa: BLE001 - the record is safe; only the image copy is missing
            log.warning("could not attach the image %s to record %s: %s", image_ref, record_id, exc)

    def _delete_annotations(self, data: dict[str, Any]) -> dict[str, Any]:
        pid = project_id(data.get("project"))
        annotations = data.get("annotations")
        if not isinstance(annotations, list):
            raise BadRequest("ANNOTATIONS_DELETED needs an 'annotations' list")
        removed = 0
        for a in annotations:
            ann_id = a.get("id") if isinstance(a, dict) else a
            if ann_id is None:
                continue
            if isinstance(ann_id, bool) or not isinstance(ann_id, (int, str)):
                raise BadRequest(f"ANNOTATIONS_DELETED: an annotation id must be an integer or a string, "
                                 f"got {describe(ann_id)}")
            for record in self.store.list(source=SOURCE, project=pid, annotation_id=ann_id):
                self.store.remove(record.id)
                removed += 1
        return {"status": "deleted", "records": removed}


class PixelBudget:
    """At most `capacity` pixels held at once by all threads together; `hold(n)` waits its turn
    (first come, first served, so a large annotation is not starved by a stream of small ones)."""

    def __init__(self, capacity: int):
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.in_use = 0
        self._cond = threading.Condition()
        self._line: deque = deque()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        pixels = max(0, min(int(pixels), self.capacity))
        ticket = object()
        with self._cond:
            self._line.append(ticket)
            while self._line[0] is not ticket or self.in_use + pixels > self.capacity:
                self._cond.wait()
            self._line.popleft()
            self.in_use += pixels
            self._cond.notify_all()  # the next in line may fit beside us
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= pixels
                self._cond.notify_all()


# ----------------------------------------------------------------------------- brushes
def brush_result(mask: np.ndarray, from_name: str, to_name: str, label: str, *, region_id: str,
                 score: float) -> dict[str, Any]:
    """A Label Studio brush result for an (H, W) bool mask (RLE in Label Studio's own format)."""
    from label_studio_sdk.converter import brush

    height, width = mask.shape
    return {
        "id": region_id,
        "from_name": from_name,
        "to_name": to_name,
        "type": "brushlabels",
        "origin": "manual",
        "original_width": int(width),
        "original_height": int(height),
        "image_rotation": 0,
        "value": {"format": "rle", "rle": brush.mask2rle(mask.astype(np.uint8) * 255), "brushlabels": [label]},
        "score": float(score),
        "readonly": False,
    }


def brush_size(result: dict[str, Any], index: int = 0) -> tuple[int, int]:
    """(width, height) a brush result declares, within the image pixel limit; BadRequest or
    RequestError (422) otherwise. Nothing is decoded."""
    width, height = result.get("original_width"), result.get("original_height")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        raise BadRequest(f"brush {index + 1} needs positive integer original_width and original_height "
                         f"(got {describe(width)}, {describe(height)})")
    if width * height > max_image_pixels():
        size = f"{width}x{height}" if width * height < 10**18 else f"{describe(width)} x {describe(height)}"
        raise RequestError(f"brush {index + 1} is {size} pixels, more than the image limit of "
                           f"{max_image_pixels()} pixels")
    return width, height


def decode_brush(result: dict[str, Any], index: int = 0) -> np.ndarray:
    """(H, W) bool mask of a brush result; BadRequest (or RequestError for a size over the
    image pixel limit) when it is malformed, always before the RLE is decoded."""
    from label_studio_sdk.converter import brush

    width, height = brush_size(result, index)
    value = result.get("value")
    rle = value.get("rle") if isinstance(value, dict) else None
    if value is not None and isinstance(value, dict) and value.get("format", "rle") != "rle":
        raise BadRequest(f"brush {index + 1} has format {describe(value.get('format'))}; only 'rle' is supported")
    if not isinstance(rle, list) or not rle or not all(type(v) is int and 0 <= v < 256 for v in rle):
        raise BadRequest(f"brush {index + 1} has no valid RLE (value.rle must be a list of bytes)")
    declared = int.from_bytes(bytes(rle[:4]), "big") if len(rle) >= 4 else -1
    if declared != width * height * 4:
        # Checked before decoding: the decoder allocates whatever the header says.
        raise BadRequest(f"brush {index + 1}: the RLE is for {max(declared, 0) // 4} pixels, the image "
                         f"is {width}x{height}")
    try:
        flat = brush.decode_rle(rle)
    except Exception as exc:  # noqa: BLE001 - the SDK decoder raises plain exceptions on garbage
        raise BadRequest(f"brush {index + 1}: the RLE cannot be decoded: {str(exc)[:200]}") from None
    if flat.size != width * height * 4:
        raise BadRequest(f"brush {index + 1}: the RLE holds {flat.size // 4} pixels, the image is "
                         f"{width}x{height}")
    return flat.reshape(height, width, 4)[:, :, 3] > 0


def _name(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise BadRequest(f"{what} must be a string, got {describe(value)}")


def _brush_label(result: dict[str, Any]) -> str | None:
    value = result.get("value")
    labels = value.get("brushlabels") if isinstance(value, dict) else None
    return labels[0] if isinstance(labels, list) and labels and isinstance(labels[0], str) else None


__all__ = ["FcanetModel", "brush_result", "decode_brush", "project_id", "SmartKeypoint"]
