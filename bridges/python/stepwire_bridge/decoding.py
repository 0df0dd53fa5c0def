"""A frame's body to a JSON value, or why it is not one (answered ``-32700``, ``id: null``).

The body must be UTF-8 JSON whose strings are Unicode text. Python's ``json`` accepts more than
that: ``NaN``/``Infinity`` and lone UTF-16 surrogate escapes (``"\\ud800"``), which decode to a
``str`` that cannot be encoded back, so a reply echoing it could never be written. Both are
refused here, as the Rust peers (serde_json) refuse them, before anything is dispatched.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Only a ``\\u`` escape can put a surrogate into a parsed string (strict UTF-8 decoding refuses
# encoded ones), so bodies without one skip the walk.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class BodyError(ValueError):
    """The body is not UTF-8 JSON text; the message says why."""


def decode_body(body: bytes) -> Any:
    """The JSON value of ``body``; raises :class:`BodyError`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BodyError(f"message body is not valid UTF-8: {e}") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise BodyError(f"message body is not valid JSON: {e}") from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise BodyError(
            "message body is not valid JSON text: a string holds a lone UTF-16 surrogate escape "
            "(\\ud800-\\udfff not part of a pair), which is no Unicode character"
        )
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _has_lone_surrogate(value: Any) -> bool:
    # Iterative: the value may be nested as deep as the parser allowed.
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False
