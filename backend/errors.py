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


def describe(value) -> str:
    """A short description of a client-sent value for an error message: short scalars as
    themselves, everything else by type (never a huge or deeply nested repr)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if -10**15 < value < 10**15 else "a huge integer"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    return f"a JSON {'object' if isinstance(value, dict) else 'array' if isinstance(value, list) else type(value).__name__}"
