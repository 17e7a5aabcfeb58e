"""Keeping each object's ordered clicks when Label Studio sends only the newest one.

What Label Studio 1.23 sends (read in its front-end source and seen in a real browser, see
the README section Label Studio in five steps): on every smart click the context holds the *dynamic* keypoints of
the clicked label that are still in the annotation, in creation order. With "auto-accept
suggestions" off (the default) that is the object's whole sequence until the labeler
accepts or rejects the suggestion (both delete those keypoints). With auto-accept on, each
suggestion is accepted at once, its keypoints deleted, and the next click arrives alone.

So: a context with two or more keypoints is taken as the whole sequence (and marks this
task/labeler as "sends full sequences"). A lone keypoint either starts a new object or, in
auto-accept mode, continues the current one; it continues when it is negative (a negative
click cannot start an object) or lies near the current object's mask, and this
task/labeler has never sent a full sequence. Each object keeps one brush result id, so in
auto-accept mode every click updates the same brush instead of stacking new ones.

Who is clicking: sessions are keyed by labeler (see `labeler_of`) where the request says who
it is, so two people on one task keep separate sequences. A request that does not identify
its labeler falls back to a key shared by everyone on the task (the behaviour before
labelers were told apart); the first identified request of a labeler that continues such
a shared session adopts it (moves it under its own key), so clicks made before Label
Studio saved the labeler's first draft are not lost.

Bounded (LRU, `max_items`) and expiring (`ttl_s` since last use); thread-safe.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from model import BoundedCache, Click, object_box

from .keypoints import SmartKeypoint


@dataclass
class ObjectSession:
    """The clicks of one object being labelled. clicks: pixels, first = anchor.
    bbox: (x0, y0, x1, y1), x1 and y1 exclusive, of the last predicted mask in pixels, None before the first."""

    region_id: str
    keypoint_ids: list[str | None]
    clicks: list[Click]
    bbox: tuple[int, int, int, int] | None = None
    last_used: float = 0.0
    labels: tuple[str, ...] = field(default_factory=tuple)


def new_region_id() -> str:
    """A region id in Label Studio's style (10 URL-safe characters)."""
    return secrets.token_urlsafe(8)[:10]


def labeler_of(task: Any) -> str | None:
    """Who sent an interactive /predict request, or None when the task does not say.

    Label Studio 1.23 (`MLBackend.interactive_annotating`) serialises the task with
    `InteractiveMixin`, which adds `drafts` filtered to the requesting user; each draft's
    `user` is that user's e-mail (the user model's string form). So all drafts name one user,
    the labeler. A task without drafts (the labeler's first clicks, before Label Studio saved
    a draft) or with drafts of several users does not identify anyone.
    """
    drafts = task.get("drafts") if isinstance(task, dict) else None
    if not isinstance(drafts, list):
        return None
    users = set()
    for draft in drafts:
        user = draft.get("user") if isinstance(draft, dict) else None
        if isinstance(user, dict):
            user = user.get("email") or user.get("id")
        if isinstance(user, bool) or not isinstance(user, (str, int)) or str(user) == "":
            continue
        users.add(str(user)[:320])
    return users.pop() if len(users) == 1 else None


class ClickMemory:
    """Per (project, task, labeler, image, label) click sessions, plus brush id -> clicks."""

    def __init__(self, max_items: int = 2048, ttl_s: float = 1800.0, clock: Callable[[], float] = time.monotonic):
        self._sessions = BoundedCache(max_items, ttl_s=ttl_s, clock=clock)
        self._sends_full = BoundedCache(max_items, ttl_s=ttl_s, clock=clock)
        self._by_region = BoundedCache(max_items * 4, ttl_s=ttl_s, clock=clock)
        self._clock = clock
        self._lock = threading.Lock()

    def resolve(self, key: Hashable, points: Sequence[SmartKeypoint], clicks: Sequence[Click], *,
                fallback_key: Hashable | None = None) -> tuple[ObjectSession, list[Click]]:
        """The object session and the whole ordered click sequence for this request.

        points and clicks describe the same keypoints (clicks already in pixels). key names
        the labeler's session; fallback_key (the shared, unidentified key of the same task
        and label) is consulted when key has none, and a session continued from it moves
        under key.
        """
        if not points or len(points) != len(clicks):
            raise ValueError("resolve needs the same non-empty number of keypoints and clicks")
        with self._lock:
            shared = None
            session = self._sessions.get(key)
            if session is None and fallback_key is not None:
                session = shared = self._sessions.get(fallback_key)
            session, result, keep = self._resolve(key, fallback_key if shared is not None else None, session,
                                                  points, clicks)
            if shared is not None and session is shared:
                self._sessions.pop(fallback_key)  # adopted: this labeler's from now on
                keep = True
            if keep:
                session.last_used = self._clock()
                session.labels = (points[0].label,)
                self._sessions.put(key, session)
                self._by_region.put(session.region_id, tuple(session.clicks))
            return session, result

    def _resolve(self, key, fallback_key, session, points, clicks) -> tuple[ObjectSession, list[Click], bool]:
        """(session, sequence, whether to remember the session); called with the lock held."""
        ids = [p.region_id for p in points]
        if len(points) >= 2:
            self._sends_full.put(key, True)
            if session is None or not session.keypoint_ids or session.keypoint_ids[0] != ids[0]:
                session = ObjectSession(region_id=new_region_id(), keypoint_ids=[], clicks=[])
            session.keypoint_ids, session.clicks = list(ids), list(clicks)
            return session, list(session.clicks), True
        point, click = points[0], clicks[0]
        if session is not None and point.region_id is not None and point.region_id in session.keypoint_ids:
            # The same keypoint again (a retried request): answer for the sequence up to it.
            upto = session.keypoint_ids.index(point.region_id) + 1
            return session, list(session.clicks[:upto]), False
        if session is not None and self._continues((key, fallback_key), session, click):
            session.keypoint_ids.append(point.region_id)
            session.clicks.append(click)
        elif click.positive:
            session = ObjectSession(region_id=new_region_id(), keypoint_ids=[point.region_id], clicks=[click])
        else:
            # A lone negative click with nothing to continue: the predictor refuses it.
            return ObjectSession(region_id=new_region_id(), keypoint_ids=ids, clicks=[click]), [click], False
        return session, list(session.clicks), True

    def _continues(self, keys: Sequence[Hashable], session: ObjectSession, click: Click) -> bool:
        if any(k is not None and self._sends_full.get(k) for k in keys):
            return False  # this labeler's Label Studio sends whole sequences: a lone click is a new object
        if not click.positive or session.bbox is None:
            return True
        x0, y0, x1, y1 = session.bbox
        margin = max(8.0, 0.25 * max(x1 - x0, y1 - y0))
        return x0 - margin <= click.x <= x1 + margin and y0 - margin <= click.y <= y1 + margin

    def record_mask(self, session: ObjectSession, mask: np.ndarray) -> None:
        """Remember where the object's last mask ((H, W) bool) lies, for the continuation test."""
        bbox = object_box(mask, [])
        with self._lock:
            session.bbox = bbox

    def clicks_for_region(self, region_id: str | None) -> list[Click] | None:
        """The clicks that produced the brush result with this id, if this process made it recently."""
        if region_id is None:
            return None
        with self._lock:
            clicks = self._by_region.get(str(region_id))
        return list(clicks) if clicks is not None else None

    def __len__(self) -> int:
        return len(self._sessions)
