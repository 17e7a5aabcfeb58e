"""Errors the backend answers with a 4xx (or 503) status and a message."""

from __future__ import annotations

from model import FcanetInputError


class RequestError(FcanetInputError):
    """A request the backend cannot serve; `status` is the HTTP status to answer with."""

    status = 422

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(RequestError):
    """Malformed JSON, missing or mistyped fields."""

    status = 400


class ImageFetchError(RequestError):
    """The task's image cannot be fetched: bad reference, host not allowed, unreachable, not an image."""

    status = 424
