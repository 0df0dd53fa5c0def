"""Params checking: every field the bridge reads is type-checked; unknown fields are tolerated."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

from . import errors as E

U64_MAX = 2**64 - 1


def object_params(params: Any, method: str, required: bool = False) -> Dict[str, Any]:
    if params is None:
        if required:
            raise E.InvalidParams(f"`{method}` needs params (an object)")
        return {}
    if not isinstance(params, dict):
        raise E.InvalidParams(f"params of `{method}` must be an object")
    meta = params.get("_meta")
    if meta is not None and not isinstance(meta, dict):
        raise E.InvalidParams("`_meta` must be an object")
    return params


def req_str(p: Dict[str, Any], key: str) -> str:
    if key not in p or p[key] is None:
        raise E.InvalidParams(f"missing `{key}` (a string)")
    if not isinstance(p[key], str):
        raise E.InvalidParams(f"`{key}` must be a string, got {json_type(p[key])}")
    return p[key]


def opt_str(p: Dict[str, Any], key: str) -> Optional[str]:
    v = p.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise E.InvalidParams(f"`{key}` must be a string, got {json_type(v)}")
    return v


def opt_uint(p: Dict[str, Any], key: str, maximum: int = U64_MAX) -> Optional[int]:
    v = p.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > maximum:
        raise E.InvalidParams(f"`{key}` must be a non-negative integer, got {json.dumps(v)[:40]}")
    return v


def json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"
