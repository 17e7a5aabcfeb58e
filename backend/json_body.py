"""Parsing a request body into a JSON object, refusing what no Label Studio call contains.

Refused with BadRequest (400), before any handler sees the body: malformed JSON or UTF-8,
integers beyond Python's digit limit for int <-> str conversion, the non-standard constants
NaN / Infinity / -Infinity, numbers that overflow a float (1e999), and nesting deeper than
MAX_DEPTH (Label Studio's payloads are about six levels deep; refusing deep nesting here means
no later step can recurse on it).
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import BadRequest

#: Deepest accepted nesting of arrays and objects.
MAX_DEPTH = 64


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _no_constant(name: str):
    raise _NotFinite(name)


class _NotFinite(ValueError):
    pass


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a dict; BadRequest naming the problem otherwise."""
    if not raw.strip():
        raise BadRequest("the body is empty: send a JSON object")
    try:
        body = json.loads(raw, parse_float=_finite_float, parse_constant=_no_constant)
    except _NotFinite as exc:
        raise BadRequest(f"the JSON holds the number {str(exc)[:40]}, which is not finite: send finite numbers") \
            from None
    except RecursionError:
        raise BadRequest(f"the JSON is nested too deeply (more than {MAX_DEPTH} levels)") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    except UnicodeDecodeError:
        raise BadRequest("malformed JSON: the body is not UTF-8 text") from None
    except ValueError as exc:
        # e.g. an integer with more digits than int() converts (sys.get_int_max_str_digits()).
        raise BadRequest(f"the JSON holds a number that cannot be read: {str(exc)[:120]}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    check_depth(body, MAX_DEPTH)
    return body


def check_depth(value: Any, limit: int) -> None:
    """BadRequest if arrays/objects nest deeper than limit (iterative: no recursion on input)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise BadRequest(f"the JSON is nested too deeply (more than {limit} levels)")
        children = item.values() if type(item) is dict else item
        if len(children) > 32:
            # A long array is nearly always numbers (an RLE): set(map(type, ...)) runs in C.
            kinds = set(map(type, children))
            if dict not in kinds and list not in kinds:
                continue
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
