"""The three patch formats the Kubernetes API accepts, applied to plain JSON documents.

- ``application/merge-patch+json``: RFC 7386 (objects merge, ``null`` deletes, lists replace).
- ``application/strategic-merge-patch+json``: like merge patch, except that lists of objects
  carrying a ``name`` (containers, ports, env) merge element by element, as the API server does
  for those fields of built-in kinds.
- ``application/json-patch+json``: RFC 6902 operations (add, remove, replace, move, copy, test).

A malformed patch raises `PatchError`; the simulator turns it into the API server's Status.
"""

from __future__ import annotations

import copy
from typing import Any

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE, STRATEGIC)


class PatchError(ValueError):
    """The patch cannot be applied (bad shape, missing path, failed test)."""


def apply_patch(doc: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """Return a patched copy of `doc`; `doc` itself is never changed."""
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise PatchError("json patch must be a list of operations")
        return json_patch(doc, patch)
    if not isinstance(patch, dict):
        raise PatchError("merge patch must be a JSON object")
    return merge_patch(doc, patch, strategic=content_type == STRATEGIC)


def merge_patch(target: Any, patch: Any, strategic: bool = False) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif strategic and _named_list(value) and _named_list(out.get(key)):
            out[key] = _merge_by_name(out[key], value)
        else:
            out[key] = merge_patch(out.get(key), value, strategic)
    return out


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) and "name" in v for v in value)


def _merge_by_name(current: list[dict[str, Any]], patch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [copy.deepcopy(item) for item in current]
    index = {item["name"]: i for i, item in enumerate(out)}
    for item in patch:
        if item.get("$patch") == "delete":
            out = [x for x in out if x["name"] != item["name"]]
            index = {x["name"]: i for i, x in enumerate(out)}
        elif item["name"] in index:
            out[index[item["name"]]] = merge_patch(out[index[item["name"]]], item, strategic=True)
        else:
            out.append(copy.deepcopy(item))
            index[item["name"]] = len(out) - 1
    return out


# -- RFC 6902 ---------------------------------------------------------------------------------
def json_patch(doc: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    out: Any = copy.deepcopy(doc)
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {i}: needs 'op' and 'path'")
        out = _apply_op(out, op)
    return out


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    kind, path = op["op"], op["path"]
    if kind in ("add", "replace", "test") and "value" not in op:
        raise PatchError(f"{kind} {path}: missing 'value'")
    if kind == "add":
        return _add(doc, path, copy.deepcopy(op["value"]))
    if kind == "remove":
        _get(doc, path)
        return _remove(doc, path)
    if kind == "replace":
        _get(doc, path)
        return _add(_remove(doc, path), path, copy.deepcopy(op["value"]))
    if kind == "test":
        if _get(doc, path) != op["value"]:
            raise PatchError(f"test {path}: value differs")
        return doc
    if kind in ("move", "copy"):
        source = op.get("from")
        if not isinstance(source, str):
            raise PatchError(f"{kind} {path}: missing 'from'")
        value = copy.deepcopy(_get(doc, source))
        if kind == "move":
            doc = _remove(doc, source)
        return _add(doc, path, value)
    raise PatchError(f"unknown operation {kind!r}")


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"path {path!r} must start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _get(doc: Any, path: str) -> Any:
    node = doc
    for token in _tokens(path):
        node = _child(node, token, path)
    return node


def _child(node: Any, token: str, path: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise PatchError(f"path {path}: {token!r} not found")
        return node[token]
    if isinstance(node, list):
        index = _index(token, len(node) - 1, path)
        return node[index]
    raise PatchError(f"path {path}: cannot descend into a {type(node).__name__}")


def _index(token: str, top: int, path: str) -> int:
    if not token.isdigit() or int(token) > top:
        raise PatchError(f"path {path}: bad array index {token!r}")
    return int(token)


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _tokens(path)
    if not tokens:
        return value
    parent = _get(doc, "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1]))
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else _index(last, len(parent), path), value)
    else:
        raise PatchError(f"path {path}: parent is not a container")
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _tokens(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _get(doc, "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1]))
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path}: {last!r} not found")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(last, len(parent) - 1, path)]
    else:
        raise PatchError(f"path {path}: parent is not a container")
    return doc
