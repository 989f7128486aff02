"""The simulated Neo4j DBMS behind `sandbox/neo4j_sim.py`: one user, databases, a few queries.

It answers what hulk-ops sends (``RETURN 1``, ``CALL dbms.components()``, ``SHOW DATABASES``)
with the records a Neo4j 5.x enterprise server returns (4.4 column shapes when the version is
set to 4.x); anything else is a ``Neo.ClientError.Statement.SyntaxError``. A query against an
offline database fails like Neo4j's ``DatabaseUnavailable``. No I/O here: the Bolt connection
(`sandbox/bolt_server.py`) calls it under the simulator's lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

UNAUTHORIZED = "Neo.ClientError.Security.Unauthorized"
SYNTAX_ERROR = "Neo.ClientError.Statement.SyntaxError"
DATABASE_NOT_FOUND = "Neo.ClientError.Database.DatabaseNotFound"
DATABASE_UNAVAILABLE = "Neo.TransientError.General.DatabaseUnavailable"
REQUEST_INVALID = "Neo.ClientError.Request.Invalid"

# The states SHOW DATABASES reports in currentStatus (Neo4j operations manual, "Database states").
DATABASE_STATES = ("online", "offline", "starting", "stopping", "store copying", "initial", "deallocating",
                   "dirty", "quarantined", "unknown")
EDITIONS = ("enterprise", "community")
DEFAULT_USER = "neo4j"
DEFAULT_PASSWORD = "neo4j-sandbox"  # noqa: S105 - the sandbox's well-known demo credential
DEFAULT_VERSION = "5.26.1"


class BoltFailure(Exception):
    """A FAILURE the server sends: a Neo4j status code and a message; `fatal` closes the connection."""

    def __init__(self, code: str, message: str, fatal: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.fatal = code, message, fatal

    def metadata(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


@dataclass
class Database:
    name: str
    type: str = "standard"
    current: str = "online"
    requested: str = "online"
    message: str = ""
    aliases: list[str] = field(default_factory=list)
    access: str = "read-write"


@dataclass(frozen=True)
class QueryResult:
    fields: list[str]
    records: list[list[Any]]
    type: str = "r"  # r (read), w, rw, s (schema)


@dataclass
class Dbms:
    version: str = DEFAULT_VERSION
    edition: str = "enterprise"
    user: str = DEFAULT_USER
    password: str | None = DEFAULT_PASSWORD  # None: auth disabled (dbms.security.auth_enabled=false)
    address: str = "localhost:7687"
    default_database: str = "neo4j"
    databases: dict[str, Database] = field(default_factory=lambda: {
        "neo4j": Database("neo4j"),
        "system": Database("system", type="system"),
        "graph-rag": Database("graph-rag", aliases=["rag"]),
    })
    commits: int = 0

    # -- auth ---------------------------------------------------------------------------------
    def authenticate(self, auth: dict[str, Any]) -> str:
        """Check a HELLO/LOGON auth map; return the user name or raise a fatal Unauthorized."""
        if self.password is None:
            return str(auth.get("principal") or "")
        scheme = auth.get("scheme")
        if scheme == "basic" and auth.get("principal") == self.user and auth.get("credentials") == self.password:
            return self.user
        raise BoltFailure(UNAUTHORIZED, "The client is unauthorized due to authentication failure.", fatal=True)

    # -- databases ----------------------------------------------------------------------------
    def resolve(self, name: str | None) -> Database:
        name = name or self.default_database
        for db in self.databases.values():
            if db.name == name or name in db.aliases:
                return db
        raise BoltFailure(DATABASE_NOT_FOUND, f"Database does not exist. Database name: '{name}'.")

    def open(self, name: str | None) -> Database:
        """The database a transaction runs in; it must exist and be online."""
        db = self.resolve(name)
        if db.current != "online":
            raise BoltFailure(DATABASE_UNAVAILABLE, f"Database '{db.name}' is unavailable.")
        return db

    def set_status(self, name: str, status: str, requested: str | None = None, message: str = "") -> Database:
        if status not in DATABASE_STATES:
            raise ValueError(f"unknown database status {status!r} (known: {', '.join(DATABASE_STATES)})")
        if name == "system" and status != "online":
            raise ValueError("the system database cannot be taken offline")
        db = self.databases.get(name) or self.databases.setdefault(name, Database(name))
        db.current = status
        db.requested = requested or ("offline" if status == "offline" else "online")
        db.message = message
        return db

    # -- queries ------------------------------------------------------------------------------
    def run(self, query: str, db: Database) -> QueryResult:
        text = " ".join(query.strip().rstrip(";").split())
        for pattern, answer in _QUERIES:
            match = pattern.match(text)
            if match:
                return answer(self, match)
        first = text.split(" ", 1)[0] if text else ""
        raise BoltFailure(SYNTAX_ERROR, f"Invalid input '{first}': this simulator answers RETURN <integer>, "
                                        "CALL dbms.components() and SHOW DATABASES (line 1, column 1 (offset: 0))")

    def _return(self, match: re.Match[str]) -> QueryResult:
        alias = (match["alias"] or match["value"]).strip("`")
        return QueryResult([alias], [[int(match["value"])]])

    def _components(self, match: re.Match[str]) -> QueryResult:
        row = {"name": "Neo4j Kernel", "versions": [self.version], "edition": self.edition}
        return _project(row.keys(), [row], match["yield"])

    def _show(self, match: re.Match[str]) -> QueryResult:
        parts = match["which"].split(" ")
        if parts[0].upper() in ("DEFAULT", "HOME"):
            wanted = [self.resolve(None)]
        elif len(parts) == 2:  # SHOW DATABASE <name>: no such database is an empty result, not an error
            name = parts[1].strip("`").lower()
            wanted = [db for db in self.databases.values() if db.name == name or name in db.aliases]
        else:
            wanted = sorted(self.databases.values(), key=lambda d: d.name)
        rows = [self._database_row(db) for db in wanted]
        columns = list(rows[0].keys()) if rows else list(self._database_row(Database("x")).keys())
        return _project(columns, rows, match["yield"])

    def _database_row(self, db: Database) -> dict[str, Any]:
        is_default = db.name == self.default_database
        if self.version.startswith("4."):
            return {"name": db.name, "aliases": db.aliases, "access": db.access, "address": self.address,
                    "role": "standalone", "requestedStatus": db.requested, "currentStatus": db.current,
                    "error": db.message, "default": is_default, "home": is_default}
        return {"name": db.name, "type": db.type, "aliases": db.aliases, "access": db.access,
                "address": self.address, "role": "primary" if db.current == "online" else None,
                "writer": db.current == "online", "requestedStatus": db.requested, "currentStatus": db.current,
                "statusMessage": db.message, "default": is_default, "home": is_default, "constituents": []}


def _project(columns: Any, rows: list[dict[str, Any]], yield_text: str | None) -> QueryResult:
    fields = list(columns)
    if yield_text and yield_text.strip() != "*":
        wanted = [c.strip().strip("`") for c in yield_text.split(",")]
        unknown = [c for c in wanted if c not in fields]
        if unknown:
            raise BoltFailure(SYNTAX_ERROR, f"Variable `{unknown[0]}` not defined (line 1, column 1 (offset: 0))")
        fields = wanted
    return QueryResult(fields, [[row[c] for c in fields] for row in rows])


_NAME = r"`[^`]+`|[A-Za-z0-9_.-]+"
_QUERIES = (
    (re.compile(rf"^RETURN (?P<value>-?\d+)(?: AS (?P<alias>{_NAME}))?$", re.I), Dbms._return),
    (re.compile(r"^CALL dbms\.components\(\s*\)(?: YIELD (?P<yield>.+))?$", re.I), Dbms._components),
    (re.compile(rf"^SHOW (?P<which>DATABASES|DEFAULT DATABASE|HOME DATABASE|DATABASES? (?:{_NAME}))"
                r"(?: YIELD (?P<yield>.+))?$", re.I), Dbms._show),
)
