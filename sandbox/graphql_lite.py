"""A very small GraphQL reader and executor for the simulators (graphql-core is not a dependency).

It understands what API clients actually send: one operation (``query``/``mutation``, optionally
named, optionally with variable definitions), nested selection sets, aliases, arguments whose
values are strings, numbers, booleans, null, enums, lists, input objects or ``$variables``.
Fragments and directives are not supported (a clear error says so).

Execution projects plain Python data onto the selection set: a dict is an object, a list is a
list, a callable field value is a resolver called with the field's arguments. Asking for a field
an object does not have fails like a real server: ``Cannot query field "x" on type "Pod".``
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r'(?P<skip>[\s,\ufeff]+|#[^\n]*)'
    r'|(?P<string>"(?:[^"\\\n]|\\.)*")'
    r'|(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)'
    r'|(?P<name>[_A-Za-z][_0-9A-Za-z]*)'
    r'|(?P<spread>\.\.\.)'
    r'|(?P<punct>[{}()\[\]:!$=@])'
)
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class GraphQLError(Exception):
    """A problem with the request document or its execution; the message is what clients see."""


@dataclass(frozen=True, slots=True)
class Selection:
    name: str
    alias: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    fields: tuple[Selection, ...] = ()

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True, slots=True)
class Operation:
    kind: str  # "query" | "mutation"
    name: str | None
    fields: tuple[Selection, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise GraphQLError(f"Syntax Error: Unexpected character {text[pos]!r} at offset {pos}.")
        pos = match.end()
        kind = match.lastgroup or ""
        if kind == "skip":
            continue
        if kind == "spread":
            raise GraphQLError("Syntax Error: fragments are not supported by this simulator.")
        out.append((kind, match.group()))
    return out


class _Parser:
    def __init__(self, text: str, variables: Mapping[str, Any]) -> None:
        self.toks = _tokens(text)
        self.pos = 0
        self.variables = variables

    def peek(self) -> tuple[str, str]:
        return self.toks[self.pos] if self.pos < len(self.toks) else ("eof", "<EOF>")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        tok_kind, tok = self.peek()
        if tok_kind == "eof" or (value is not None and tok != value) or (kind is not None and tok_kind != kind):
            raise GraphQLError(f"Syntax Error: Expected {value or kind or 'more'}, found {tok}.")
        self.pos += 1
        return tok

    def document(self) -> Operation:
        kind, name = "query", None
        if self.peek() in (("name", "query"), ("name", "mutation")):
            kind = self.take()
            if self.peek()[0] == "name":
                name = self.take()
            if self.peek()[1] == "(":
                self.skip_group("(", ")")  # variable definitions: values come from `variables`
        if self.peek()[1] == "@":
            raise GraphQLError("Syntax Error: directives are not supported by this simulator.")
        fields = self.selection_set()
        if self.peek()[0] != "eof":
            raise GraphQLError("This simulator accepts one operation per request.")
        return Operation(kind, name, fields)

    def skip_group(self, opening: str, closing: str) -> None:
        depth = 0
        while True:
            tok = self.take()
            depth += (tok == opening) - (tok == closing)
            if depth == 0:
                return

    def selection_set(self) -> tuple[Selection, ...]:
        self.take("{")
        fields: list[Selection] = []
        while self.peek()[1] != "}":
            if self.peek()[0] == "eof":
                raise GraphQLError("Syntax Error: Expected }, found <EOF>.")
            fields.append(self.selection())
        self.take("}")
        return tuple(fields)

    def selection(self) -> Selection:
        name, alias = self.take(kind="name"), None
        if self.peek()[1] == ":":
            self.take(":")
            alias, name = name, self.take(kind="name")
        args: dict[str, Any] = {}
        if self.peek()[1] == "(":
            self.take("(")
            while self.peek()[1] != ")":
                key = self.take(kind="name")
                self.take(":")
                args[key] = self.value()
            self.take(")")
        if self.peek()[1] == "@":
            raise GraphQLError("Syntax Error: directives are not supported by this simulator.")
        fields = self.selection_set() if self.peek()[1] == "{" else ()
        return Selection(name, alias, args, fields)

    def value(self) -> Any:
        kind, tok = self.peek()
        if tok == "$":
            self.take("$")
            var = self.take(kind="name")
            if var not in self.variables:
                raise GraphQLError(f'Variable "${var}" was not provided.')
            return self.variables[var]
        if tok == "[":
            self.take("[")
            items = []
            while self.peek()[1] != "]":
                items.append(self.value())
            self.take("]")
            return items
        if tok == "{":
            self.take("{")
            obj: dict[str, Any] = {}
            while self.peek()[1] != "}":
                key = self.take(kind="name")
                self.take(":")
                obj[key] = self.value()
            self.take("}")
            return obj
        self.pos += 1
        if kind == "string":
            return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", _unescape, tok[1:-1])
        if kind == "number":
            return float(tok) if any(c in tok for c in ".eE") else int(tok)
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(tok, tok)  # other names: enum values
        raise GraphQLError(f"Syntax Error: Unexpected {tok}.")


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    return chr(int(code[1:], 16)) if code.startswith("u") else _ESCAPES.get(code, code)


def parse(text: str, variables: Mapping[str, Any] | None = None) -> Operation:
    if not isinstance(text, str) or not text.strip():
        raise GraphQLError("Must provide query string.")
    return _Parser(text, variables or {}).document()


Resolver = Callable[[dict[str, Any]], Any]


def execute(operation: Operation, roots: Mapping[str, Any], type_name: str) -> dict[str, Any]:
    """Resolve the operation's root fields from `roots` (field name -> resolver or value)."""
    return project(dict(roots, __typename=type_name), operation.fields)


def project(value: Any, fields: tuple[Selection, ...]) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [project(item, fields) for item in value]
    if isinstance(value, dict):
        type_name = value.get("__typename", "Object")
        if not fields:
            raise GraphQLError(f'Field of type "{type_name}" must have a selection of subfields.')
        out: dict[str, Any] = {}
        for sel in fields:
            if sel.name not in value:
                raise GraphQLError(f'Cannot query field "{sel.name}" on type "{type_name}".')
            item = value[sel.name]
            if callable(item):
                item = item(sel.args)
            out[sel.key] = project(item, sel.fields)
        return out
    if fields:
        raise GraphQLError(f'Field "{fields[0].name}" must not have a selection since its type has no subfields.')
    return value
