"""The guard's proof that a request passed authorisation, confirmation and the audit write.

Executors refuse to run without a `Permit` for exactly the request they are given, and a permit
works once. Only the guard mints them (`GuardedAction` calls `_mint` after the audit row 'started'
is committed); nothing else in the code base does, and a test checks executors refuse without one.
"""

from __future__ import annotations

from typing import Any

_SEAL = object()


class PermitError(PermissionError):
    """An executor was called without a valid permit: a bug, never a user error."""


class Permit:
    __slots__ = ("audit_id", "fingerprint", "used")

    def __init__(self, audit_id: int, fingerprint: str, *, seal: Any) -> None:
        if seal is not _SEAL:
            raise PermitError("permits are issued by the guard only")
        self.audit_id = audit_id
        self.fingerprint = fingerprint
        self.used = False

    def spend(self, fingerprint: str) -> None:
        if self.used:
            raise PermitError(f"permit of audit row {self.audit_id} was already used")
        if fingerprint != self.fingerprint:
            raise PermitError(f"permit of audit row {self.audit_id} is for another request")
        self.used = True


def _mint(audit_id: int, fingerprint: str) -> Permit:
    return Permit(audit_id, fingerprint, seal=_SEAL)
