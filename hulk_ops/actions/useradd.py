"""`hulk-ops user add`: append a local user to `auth.users` of a config file, keeping the rest of it.

The file is edited in place, not re-serialised: the new entry is inserted as one flow-style line
where the YAML node positions say the `users:` list ends, so comments, order and `${ENV}` references
survive. The result is validated like any config before it replaces the file (atomically).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from hulk_ops.actions.identity import hash_secret, new_token
from hulk_ops.core.config import ConfigError, load_config, parse_config


class EditError(Exception):
    """The file cannot be edited safely by the command (say what to do by hand)."""


def add_user(path: str | os.PathLike[str], name: str, role: str, password: str | None = None) -> str:
    """Add the user, write the file, return the new API token (shown once; only its hash is stored)."""
    source = str(path)
    config = load_config(path)  # the current file must be valid
    if config.auth.user(name):
        raise EditError(f"{source}: user {name!r} already exists (auth.users)")
    token_id, token, token_hash = new_token()
    entry: dict[str, Any] = {"name": name, "role": role, "token_id": token_id, "token_hash": token_hash}
    if password:
        entry["password_hash"] = hash_secret(password)
    text = Path(path).read_text(encoding="utf-8")
    updated = insert_user(text, entry)
    try:
        parse_config(updated, source)
    except ConfigError as exc:
        raise EditError(f"{source}: the new user would make the config invalid: {exc}") from None
    _write_atomically(Path(path), updated)
    return token


def insert_user(text: str, entry: dict[str, Any]) -> str:
    line = yaml.safe_dump(entry, default_flow_style=True, width=10**6, sort_keys=False).strip()
    root = yaml.compose(text)
    if root is None or (isinstance(root, yaml.MappingNode) and not root.value):
        return f"{text.rstrip()}\nauth:\n  users:\n    - {line}\n".lstrip()
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise EditError("the top level is not a block mapping: add the user under auth.users by hand")
    auth = _value(root, "auth")
    if auth is None:
        return f"{_with_newline(text)}auth:\n  users:\n    - {line}\n"
    if not isinstance(auth, yaml.MappingNode) or auth.flow_style or not auth.value:
        raise EditError("auth: is not a block mapping: add the user under auth.users by hand")
    users = _value(auth, "users")
    if users is None:
        indent = " " * auth.value[0][0].start_mark.column
        return _insert_at(text, auth.end_mark.index, f"{indent}users:\n{indent}  - {line}\n")
    if isinstance(users, yaml.SequenceNode) and not users.flow_style and users.value:
        indent = " " * users.start_mark.column
        return _insert_at(text, users.end_mark.index, f"{indent}- {line}\n")
    if isinstance(users, yaml.SequenceNode) and not users.value:  # users: []
        indent = " " * (auth.value[0][0].start_mark.column + 2)
        return text[:users.start_mark.index] + f"\n{indent}- {line}" + text[users.end_mark.index:]
    raise EditError("auth.users is written in flow style: add the user by hand")


def _value(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    return next((v for k, v in mapping.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _insert_at(text: str, index: int, block: str) -> str:
    before = text[:index]
    if before and not before.endswith("\n"):
        before += "\n"
    return before + block + text[index:]


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
