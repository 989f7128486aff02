"""List semantics of the Kubernetes API: label and field selectors, and limit/continue paging.

Label selectors support ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` and
``!k``; field selectors ``path=v``, ``path==v`` and ``path!=v`` over dotted paths
(``involvedObject.name``, ``status.phase``, ``spec.nodeName``, ``type``, ``metadata.namespace``).
A continue token names the offset and the resourceVersion of the list it came from.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

import orjson

from sandbox.k8s_cluster import ApiError

_SET_EXPR = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def select(items: list[dict[str, Any]], query: Mapping[str, str]) -> list[dict[str, Any]]:
    labels = _parse_labels(query.get("labelSelector", ""))
    fields = _parse_fields(query.get("fieldSelector", ""))
    return [i for i in items if all(_label_ok(i["metadata"].get("labels") or {}, *t) for t in labels)
            and all((_field(i, path) == value) != negate for path, value, negate in fields)]


def paginate(items: list[dict[str, Any]], query: Mapping[str, str], rv: int) -> tuple[list[dict[str, Any]],
                                                                                     str | None, int]:
    """The page asked for, the continue token of the next page (None: last page), items after it."""
    start = 0
    token = query.get("continue")
    if token:
        try:
            start = int(orjson.loads(base64.urlsafe_b64decode(token.encode()))["start"])
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, "BadRequest", "continue key is not valid: incorrect encoded start position") from None
    try:
        limit = int(query.get("limit") or 0)
    except ValueError:
        raise ApiError(400, "BadRequest", f"limit: invalid value {query.get('limit')!r}") from None
    if limit <= 0:
        return items[start:], None, 0
    end = start + limit
    if end >= len(items):
        return items[start:], None, 0
    cont = base64.urlsafe_b64encode(orjson.dumps({"rv": rv, "start": end})).decode()
    return items[start:end], cont, len(items) - end


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _parse_labels(text: str) -> list[tuple[str, str, set[str]]]:
    """Each requirement as (key, op, values) with op one of in, notin, exists, !exists."""
    out = []
    for part in _split(text):
        match = _SET_EXPR.match(part)
        if match:
            out.append((match[1], match[2], {v.strip() for v in match[3].split(",")}))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            out.append((key.strip(), "notin", {value.strip()}))
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            out.append((key.strip(), "in", {value.strip()}))
        elif part.startswith("!"):
            out.append((part[1:].strip(), "!exists", set()))
        else:
            out.append((part, "exists", set()))
    return out


def _label_ok(labels: dict[str, str], key: str, op: str, values: set[str]) -> bool:
    if op == "exists":
        return key in labels
    if op == "!exists":
        return key not in labels
    return (labels.get(key) in values) == (op == "in")


def _parse_fields(text: str) -> list[tuple[str, str, bool]]:
    out = []
    for part in _split(text):
        negate = "!=" in part
        path, sep, value = part.replace("!=", "=").replace("==", "=").partition("=")
        if not sep:
            raise ApiError(400, "BadRequest", f'invalid selector: "{text}"; can\'t understand "{part}"')
        out.append((path.strip(), value.strip(), negate))
    return out


def _field(item: dict[str, Any], path: str) -> str:
    node: Any = item
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return "" if node is None else str(node)
