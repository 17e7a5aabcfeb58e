"""Fetching task images: Label Studio files with the API key, other hosts only if allowed.

A task's image is a Label Studio path (`/data/upload/<project>/<file>`,
`/data/local-files/?d=<path>`, `/tasks/<id>/presign/?fileuri=...`), which is fetched from
LABEL_STUDIO_URL's origin with `Authorization: Token <key>` (or `Bearer <access token>` for
a personal access token, through label-studio-sdk's token handling); an http(s) URL on
Label Studio's origin (the same); an http(s) URL on an allowed host (fetched without the
key); or a `data:image/...;base64,` URI. Every URL, redirects included, must be on Label
Studio's origin or an allowed host before it is requested; the key goes only on requests
whose whole redirect chain stayed on Label Studio's origin (docs/security-fetching.md). Downloads are size-limited and time-limited, and decoded images are kept in a
bounded LRU cache keyed by URL, so the clicks on one task download its image once; a
second request for an image being downloaded waits for that download.
"""

from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import logging
import re
import threading
from dataclasses import dataclass
from typing import Callable

import httpx
import numpy as np

from model import BoundedCache, ImageError, load_image

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
                    log.error("LABEL_STUDIO_API_KEY is not usable: %s", exc.body)
                    raise ImageFetchError("LABEL_STUDIO_API_KEY is not usable (expired or not a Label Studio "
                                          "token)", status=502) from None
            return self._client._client_wrapper

    def header(self) -> str:
        """The Authorization header value; ImageFetchError (502) when Label Studio's token
        refresh fails in any way (refused, unreachable, or a reply that is not the JSON it should be)."""
        from label_studio_sdk.core.api_error import ApiError

        try:
            return self._wrapper().get_headers()["Authorization"]
        except ImageFetchError:
            raise
        except ApiError as exc:
            log.error("Label Studio refused the personal access token refresh: %s %s", exc.status_code, exc.body)
            raise ImageFetchError(f"Label Studio refused the API key (personal access token refresh failed "
                                  f"with HTTP {exc.status_code})", status=502) from None
        except httpx.HTTPError as exc:
            log.error("cannot reach Label Studio at %s to refresh the access token: %s", self.url, exc)
            raise ImageFetchError("cannot reach Label Studio to refresh the access token", status=502) from None
        except Exception as exc:  # noqa: BLE001 - the SDK lets a non-JSON or malformed reply through as anything
            log.error("Label Studio's token refresh gave an unusable reply: %s: %s", type(exc).__name__, exc)
            raise ImageFetchError("Label Studio's access token refresh gave an unusable reply", status=502) from None

    def forget_access_token(self) -> None:
        """After a 401: make the next header() refresh the personal access token."""
        with self._lock:
            if self._client is not None:
                tokens = self._client._client_wrapper._tokens_client
                tokens._access_token = None


def image_cache(max_items: int, max_bytes: int) -> BoundedCache[FetchedImage]:
    """Downloaded images by URL: least recently used first out, bounded by count and total bytes."""
    return BoundedCache(max_items, max_bytes=max_bytes, size_of=lambda image: image.nbytes)


Origin = tuple  # (scheme, ASCII host, port): what decides where a request goes


class ImageFetcher:
    """fetch(ref) -> FetchedImage, following the rules in the module docstring.

    Every URL is parsed once with httpx (the parser that also connects), checked against
    the allow-list as that parsed object, and the same object is requested: no second
    parser can see a different host. A refused URL is refused before any connection, with
    a message that says "not allowed" and nothing about the target.
    """

    def __init__(self, config: BackendConfig, transport: httpx.BaseTransport | None = None,
                 auth: LabelStudioAuth | None = None):
        self.config = config
        self.cache = image_cache(config.image_cache_items, config.image_cache_bytes)
        # No cookie jar: cookies are scoped by host name, not origin, so a kept cookie (Label
        # Studio's session) could pass to an allowed image host on the same host name, and back.
        self._client = httpx.Client(timeout=config.image_timeout_s, follow_redirects=False, transport=transport,
                                    cookies=_no_cookies())
        self._auth = auth
        if self._auth is None and config.label_studio_url and config.label_studio_api_key:
            self._auth = LabelStudioAuth(config.label_studio_url, config.label_studio_api_key, transport=transport,
                                         timeout=config.image_timeout_s)
        self._ls_base = httpx.URL(config.label_studio_url) if config.label_studio_url else None
        self._ls_origin = _origin(self._ls_base) if self._ls_base is not None else None
        self._allow_any = "*" in config.allowed_image_hosts
        self._allowed = _allowed_origins(config.allowed_image_hosts)
        self._inflight: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------- resolving
    def resolve(self, ref: str) -> str:
        """The absolute URL for a task's image reference, or ImageFetchError (400) if not allowed."""
        return str(self._resolve(ref))

    def _resolve(self, ref: str) -> httpx.URL | str:
        """The URL to fetch (a parsed httpx.URL), the data: URI itself, or ImageFetchError (400)."""
        if not isinstance(ref, str) or not ref.strip():
            raise ImageFetchError("the task has no image reference", status=400)
        ref = ref.strip()
        if ref[:5].lower() == "data:":
            return ref
        if _UNSAFE_CHARS.search(ref):
            _refuse(ref, "control character, whitespace or backslash")
        if ref.startswith("/"):
            return self._label_studio_path(ref)
        try:
            url = httpx.URL(ref)
        except (httpx.InvalidURL, ValueError, TypeError):
            _refuse(ref, "unparseable")
        if url.scheme not in ("http", "https"):
            _refuse(ref, "scheme", "only http(s) URLs, Label Studio paths and data: URIs are supported "
                                   "(connect cloud storage in Label Studio instead)")
        if not self._may_fetch(url):
            _refuse(ref, "origin")
        return url

    def _label_studio_path(self, ref: str) -> httpx.URL:
        """A Label Studio path joined to LABEL_STUDIO_URL; the result must stay on its origin."""
        if self._ls_base is None:
            raise ImageFetchError("the image is a Label Studio path: set LABEL_STUDIO_URL (and "
                                  "LABEL_STUDIO_API_KEY) so the backend can fetch it", status=400)
        # Built as text after a fixed "scheme://host:port/": nothing in ref can reach the
        # authority (no urljoin, which treats "/http://x" or "//x" as another host).
        scheme, host, port = self._ls_origin
        prefix = self._ls_base.raw_path.decode("ascii").split("?", 1)[0].rstrip("/")
        try:
            url = httpx.URL(f"{scheme}://{_host_text(host)}:{port}{prefix}/{ref.lstrip('/')}")
        except (httpx.InvalidURL, ValueError, TypeError):
            _refuse(ref, "unparseable Label Studio path")
        if _origin(url) != self._ls_origin or url.userinfo:
            _refuse(ref, "Label Studio path left LABEL_STUDIO_URL's origin")
        return url

    def _is_label_studio(self, url: httpx.URL) -> bool:
        return self._ls_origin is not None and not url.userinfo and _origin(url) == self._ls_origin

    def _may_fetch(self, url: httpx.URL) -> bool:
        """Whether an absolute URL is on Label Studio's origin or an allowed host (checked as parsed)."""
        if url.scheme not in ("http", "https") or not url.raw_host or url.userinfo:
            return False
        if self._is_label_studio(url) or self._allow_any:
            return True
        _, host, port = _origin(url)
        return (host, None) in self._allowed or (host, port) in self._allowed

    # ------------------------------------------------------------------------- fetching
    def cached(self, ref: str) -> FetchedImage | None:
        try:
            return self.cache.get(self.resolve(ref))
        except ImageFetchError:
            return None

    def fetch(self, ref: str) -> FetchedImage:
        """The decoded image for a reference: from the cache, or downloaded once."""
        target = self._resolve(ref)
        url = str(target)
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
            data = self._download(target)
            try:
                rgb = load_image(data)
            except ImageError as exc:
                raise ImageFetchError(f"the task's image is not a usable image: {exc}", status=422) from None
            image = FetchedImage(url=url, rgb=rgb, data=data, sha256=hashlib.sha256(data).hexdigest())
            self.cache.put(image.url, image)
            return image
        finally:
            with self._lock:
                self._inflight.pop(url, None)
            done.set()

    def _download(self, target: httpx.URL | str) -> bytes:
        if isinstance(target, str):
            return _decode_data_uri(target, self.config.image_max_bytes)
        url = target
        retried_auth = False
        hops = 0
        # The key goes only to requests whose whole chain so far is on Label Studio's origin:
        # a chain that started elsewhere never earns it by redirecting to Label Studio.
        chain_on_label_studio = self._is_label_studio(url)
        while True:
            with_key = chain_on_label_studio and self._auth is not None
            headers = {"Authorization": self._auth.header()} if with_key else {}
            try:
                with self._client.stream("GET", url, headers=headers) as response:
                    if response.status_code in (301, 302, 303, 307, 308):
                        location = response.headers.get("location")
                        hops += 1
                        if not location or hops > _MAX_REDIRECTS:
                            raise ImageFetchError("the image URL redirects too often or nowhere", status=502)
                        url = self._redirect_target(url, location)
                        chain_on_label_studio = chain_on_label_studio and self._is_label_studio(url)
                        continue
                    if response.status_code == 401 and with_key and not retried_auth:
                        retried_auth = True
                        self._auth.forget_access_token()
                        continue
                    if response.status_code != 200:
                        hint = " (check LABEL_STUDIO_API_KEY)" if response.status_code in (401, 403) and with_key else ""
                        log.warning("image %s: HTTP %d", _short(str(url)), response.status_code)
                        raise ImageFetchError(f"fetching the image gave HTTP {response.status_code}{hint}",
                                              status=502 if response.status_code >= 500 else 424)
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and len(declared) < 20 \
                            and int(declared) > self.config.image_max_bytes:
                        raise ImageFetchError(f"the image is {int(declared)} bytes, more than the "
                                              f"limit of {self.config.image_max_bytes}", status=422)
                    chunks, size = [], 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > self.config.image_max_bytes:
                            raise ImageFetchError(f"the image is larger than the limit of "
                                                  f"{self.config.image_max_bytes} bytes", status=422)
                        chunks.append(chunk)
                    return b"".join(chunks)
            except httpx.HTTPError as exc:
                # One message for refused, unresolvable, reset and timed-out alike: the answer
                # must not tell a closed port from a missing host (the details go to the log).
                log.warning("cannot fetch image %s: %s: %s", _short(str(url)), type(exc).__name__, exc)
                raise ImageFetchError(_CANNOT_FETCH, status=502) from None

    def _redirect_target(self, url: httpx.URL, location: str) -> httpx.URL:
        """The absolute URL a redirect points to, if it may be fetched; else ImageFetchError."""
        try:
            if _UNSAFE_CHARS.search(location):
                raise httpx.InvalidURL("unsafe characters")
            target = url.join(location)
        except (httpx.InvalidURL, ValueError, TypeError):
            log.warning("image %s redirects to an unusable location", _short(str(url)))
            raise ImageFetchError("the image URL redirects to a URL that is not allowed", status=502) from None
        if not self._may_fetch(target):
            log.warning("image %s redirects to %s, which is not allowed", _short(str(url)), _short(str(target)))
            raise ImageFetchError("the image URL redirects to a URL that is not allowed", status=502)
        return target

    def close(self) -> None:
        self._client.close()


_CANNOT_FETCH = "cannot fetch the image: the image host did not answer (connection failed or timed out)"
#: Characters no image reference needs and URL parsers disagree on (control characters such
#: as tab and newline are stripped by some, backslash is a slash to some): refused outright rather than normalised.
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
_NOT_ALLOWED = ("the image reference is not allowed: the backend fetches only Label Studio paths on "
                "LABEL_STUDIO_URL, http(s) URLs on LABEL_STUDIO_URL or a host in FCANET_ALLOWED_IMAGE_HOSTS, "
                "and data:image URIs")


def _no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that keeps nothing: every Set-Cookie an image host answers is dropped."""
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def _refuse(ref: str, why: str, hint: str | None = None):
    log.warning("refused image reference %r (%s)", ref[:200], why)
    raise ImageFetchError(_NOT_ALLOWED + (f"; {hint}" if hint else ""), status=400)


def _origin(url: httpx.URL) -> Origin:
    """(scheme, lower-case ASCII (IDNA) host, port with the scheme's default filled in)."""
    scheme = url.scheme
    port = url.port or (443 if scheme == "https" else 80)
    return scheme, url.raw_host.decode("ascii").lower(), port


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _allowed_origins(entries) -> set[tuple[str, int | None]]:
    """{(ASCII host, port or None for any port)} from FCANET_ALLOWED_IMAGE_HOSTS entries."""
    allowed = set()
    for entry in entries:
        if entry == "*":
            continue
        try:
            url = httpx.URL(f"http://{entry}/")
        except (httpx.InvalidURL, ValueError):
            log.warning("FCANET_ALLOWED_IMAGE_HOSTS: ignoring %r (not a host or host:port)", entry)
            continue
        if url.raw_host and not url.userinfo and url.raw_path == b"/":
            # An explicit port restricts the entry to that port, even the scheme's default one.
            explicit = re.search(r":(\d+)$", entry)
            allowed.add((url.raw_host.decode("ascii").lower(), int(explicit.group(1)) if explicit else None))
    return allowed


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
