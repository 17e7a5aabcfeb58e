"""Fetching task images: Label Studio files with the API key, other hosts only if allowed.

A task's image is a Label Studio path (`/data/upload/<project>/<file>`,
`/data/local-files/?d=<path>`, `/tasks/<id>/presign/?fileuri=...`), which is fetched from
LABEL_STUDIO_URL with `Authorization: Token <key>` (or `Bearer <access token>` for a
personal access token, through label-studio-sdk's token handling); an http(s) URL on the
Label Studio host (the same); an http(s) URL on an allowed host (fetched without the key,
which never leaves for another host, redirects included); or a `data:image/...;base64,`
URI. Downloads are size-limited and time-limited, and decoded images are kept in a
bounded LRU cache keyed by URL, so the clicks on one task download its image once; a
second request for an image being downloaded waits for that download.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urljoin, urlsplit

import httpx
import numpy as np

from model import ImageError, load_image

from .config import BackendConfig
from .errors import ImageFetchError

log = logging.getLogger(__name__)

_MAX_REDIRECTS = 3


@dataclass(frozen=True)
class FetchedImage:
    """A decoded task image. rgb: (H, W, 3) uint8; data: the bytes as downloaded."""

    url: str
    rgb: np.ndarray
    data: bytes
    sha256: str

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.rgb.nbytes + len(self.data))


class LabelStudioAuth:
    """The Authorization header for Label Studio, from a legacy token or a personal access
    token; label-studio-sdk decides which and refreshes access tokens when they expire."""

    def __init__(self, url: str, api_key: str, transport: httpx.BaseTransport | None = None,
                 timeout: float = 10.0):
        self.url, self.api_key = url.rstrip("/") + "/", api_key
        self._transport, self._timeout = transport, timeout
        self._client = None
        self._lock = threading.Lock()

    def _wrapper(self):
        from label_studio_sdk.client import LabelStudio
        from label_studio_sdk.core.api_error import ApiError

        with self._lock:
            if self._client is None:
                try:
                    self._client = LabelStudio(
                        base_url=self.url, api_key=self.api_key, timeout=self._timeout,
                        httpx_client=httpx.Client(transport=self._transport, timeout=self._timeout),
                    )
                except ApiError as exc:
                    raise ImageFetchError(f"LABEL_STUDIO_API_KEY is not usable: {exc.body}") from None
            return self._client._client_wrapper

    def header(self) -> str:
        from label_studio_sdk.core.api_error import ApiError

        try:
            return self._wrapper().get_headers()["Authorization"]
        except ApiError as exc:
            raise ImageFetchError(f"Label Studio refused the API key (personal access token refresh failed: "
                                  f"{exc.status_code} {exc.body})") from None
        except httpx.HTTPError as exc:
            raise ImageFetchError(f"cannot reach Label Studio at {self.url} to refresh the access token: {exc}") from None

    def forget_access_token(self) -> None:
        """After a 401: make the next header() refresh the personal access token."""
        with self._lock:
            if self._client is not None:
                tokens = self._client._client_wrapper._tokens_client
                tokens._access_token = None


class ImageCache:
    """LRU of FetchedImage by URL, bounded by item count and by total bytes."""

    def __init__(self, max_items: int, max_bytes: int):
        self.max_items, self.max_bytes = max_items, max_bytes
        self._items: OrderedDict[str, FetchedImage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, url: str) -> FetchedImage | None:
        with self._lock:
            image = self._items.get(url)
            if image is not None:
                self._items.move_to_end(url)
            return image

    def put(self, image: FetchedImage) -> None:
        with self._lock:
            old = self._items.pop(image.url, None)
            if old is not None:
                self._bytes -= old.nbytes
            if image.nbytes > self.max_bytes:
                return
            self._items[image.url] = image
            self._bytes += image.nbytes
            while self._items and (len(self._items) > self.max_items or self._bytes > self.max_bytes):
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes

    def __len__(self) -> int:
        return len(self._items)

    @property
    def total_bytes(self) -> int:
        return self._bytes


class ImageFetcher:
    """fetch(ref) -> FetchedImage, following the rules in the module docstring."""

    def __init__(self, config: BackendConfig, transport: httpx.BaseTransport | None = None,
                 auth: LabelStudioAuth | None = None):
        self.config = config
        self.cache = ImageCache(config.image_cache_items, config.image_cache_bytes)
        self._client = httpx.Client(timeout=config.image_timeout_s, follow_redirects=False, transport=transport)
        self._auth = auth
        if self._auth is None and config.label_studio_url and config.label_studio_api_key:
            self._auth = LabelStudioAuth(config.label_studio_url, config.label_studio_api_key, transport=transport,
                                         timeout=config.image_timeout_s)
        self._inflight: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------- resolving
    def resolve(self, ref: str) -> str:
        """The absolute URL for a task's image reference, or ImageFetchError (400) if not allowed."""
        if not isinstance(ref, str) or not ref.strip():
            raise ImageFetchError("the task has no image reference", status=400)
        ref = ref.strip()
        if ref.startswith("data:"):
            return ref
        if ref.startswith("/"):
            if not self.config.label_studio_url:
                raise ImageFetchError(f"the image {ref!r} is a Label Studio path: set LABEL_STUDIO_URL (and "
                                      "LABEL_STUDIO_API_KEY) so the backend can fetch it", status=400)
            return urljoin(self.config.label_studio_url.rstrip("/") + "/", ref.lstrip("/"))
        parts = urlsplit(ref)
        if parts.scheme not in ("http", "https"):
            raise ImageFetchError(f"cannot fetch image {ref[:200]!r}: only http(s) URLs, Label Studio paths and "
                                  "data: URIs are supported (connect cloud storage in Label Studio instead)",
                                  status=400)
        if not parts.hostname:
            raise ImageFetchError(f"the image URL {ref[:200]!r} has no host", status=400)
        if not (self._is_label_studio(ref) or self._host_allowed(ref)):
            raise ImageFetchError(f"images from {parts.hostname} are not allowed: add it to "
                                  "FCANET_ALLOWED_IMAGE_HOSTS (default: only the Label Studio host)", status=400)
        return ref

    def _is_label_studio(self, url: str) -> bool:
        origin = self.config.label_studio_origin
        if origin is None:
            return False
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return (parts.scheme, (parts.hostname or "").lower(), port) == origin

    def _host_allowed(self, url: str) -> bool:
        allowed = self.config.allowed_image_hosts
        if "*" in allowed:
            return True
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        return host in allowed or (parts.port is not None and f"{host}:{parts.port}" in allowed)

    # ------------------------------------------------------------------------- fetching
    def cached(self, ref: str) -> FetchedImage | None:
        try:
            return self.cache.get(self.resolve(ref))
        except ImageFetchError:
            return None

    def fetch(self, ref: str) -> FetchedImage:
        """The decoded image for a reference: from the cache, or downloaded once."""
        url = self.resolve(ref)
        while True:
            image = self.cache.get(url)
            if image is not None:
                return image
            with self._lock:
                waiting = self._inflight.get(url)
                if waiting is None:
                    done = self._inflight[url] = threading.Event()
                    break
            waiting.wait(self.config.image_timeout_s * 2)
            if self.cache.get(url) is None:
                # The other download failed: try ourselves (and report our own error).
                with self._lock:
                    if url not in self._inflight:
                        done = self._inflight[url] = threading.Event()
                        break
        try:
            data = self._download(url)
            try:
                rgb = load_image(data)
            except ImageError as exc:
                raise ImageFetchError(f"{_short(url)} is not a usable image: {exc}", status=422) from None
            image = FetchedImage(url=url, rgb=rgb, data=data, sha256=hashlib.sha256(data).hexdigest())
            self.cache.put(image)
            return image
        finally:
            with self._lock:
                self._inflight.pop(url, None)
            done.set()

    def _download(self, url: str) -> bytes:
        if url.startswith("data:"):
            return _decode_data_uri(url, self.config.image_max_bytes)
        retried_auth = False
        hops = 0
        while True:
            with_key = self._is_label_studio(url) and self._auth is not None
            headers = {"Authorization": self._auth.header()} if with_key else {}
            try:
                with self._client.stream("GET", url, headers=headers) as response:
                    if response.status_code in (301, 302, 303, 307, 308):
                        target = response.headers.get("location")
                        hops += 1
                        if not target or hops > _MAX_REDIRECTS:
                            raise ImageFetchError(f"{_short(url)} redirects too often or nowhere")
                        next_url = urljoin(url, target)
                        # Label Studio may send us to a presigned storage URL; other hosts must stay allowed.
                        if not (with_key or self._is_label_studio(next_url) or self._host_allowed(next_url)):
                            raise ImageFetchError(f"{_short(url)} redirects to {urlsplit(next_url).hostname}, "
                                                  "which is not an allowed image host", status=400)
                        url = next_url
                        continue
                    if response.status_code == 401 and with_key and not retried_auth:
                        retried_auth = True
                        self._auth.forget_access_token()
                        continue
                    if response.status_code != 200:
                        hint = " (check LABEL_STUDIO_API_KEY)" if response.status_code in (401, 403) and with_key else ""
                        raise ImageFetchError(f"fetching the image {_short(url)} gave HTTP {response.status_code}{hint}")
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > self.config.image_max_bytes:
                        raise ImageFetchError(f"the image {_short(url)} is {int(declared)} bytes, more than the "
                                              f"limit of {self.config.image_max_bytes}", status=422)
                    chunks, size = [], 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > self.config.image_max_bytes:
                            raise ImageFetchError(f"the image {_short(url)} is larger than the limit of "
                                                  f"{self.config.image_max_bytes} bytes", status=422)
                        chunks.append(chunk)
                    return b"".join(chunks)
            except httpx.TimeoutException:
                raise ImageFetchError(f"fetching the image {_short(url)} timed out after "
                                      f"{self.config.image_timeout_s:g} s") from None
            except httpx.HTTPError as exc:
                raise ImageFetchError(f"cannot fetch the image {_short(url)}: {exc}") from None

    def close(self) -> None:
        self._client.close()


def _short(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."


def _decode_data_uri(uri: str, max_bytes: int) -> bytes:
    header, _, payload = uri.partition(",")
    if not header.startswith("data:image/") or ";base64" not in header:
        raise ImageFetchError("only base64 data:image/... URIs are supported", status=422)
    if len(payload) * 3 // 4 > max_bytes:
        raise ImageFetchError(f"the data: image is larger than the limit of {max_bytes} bytes", status=422)
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError:
        raise ImageFetchError("the data: URI is not valid base64", status=422) from None


FetchFunction = Callable[[str], FetchedImage]
