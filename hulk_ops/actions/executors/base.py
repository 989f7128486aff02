"""The executor contract: `preview()` reads and computes the dry-run, `run()` performs the write.

Executors only execute: they do not authorise, confirm or audit, and `run()` refuses without the
guard's `Permit`. Failures are exceptions of two kinds: `ActionRefused` (the request cannot be done
as asked: stream not found, over budget, unknown GPU type) and `ActionFailed` (the backend failed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Generic, TypeAlias, TypeVar

from hulk_ops.actions.model import ActionRequest, Preview
from hulk_ops.actions.permit import Permit
from hulk_ops.core.action_config import ActionsSettings
from hulk_ops.core.config import TargetSettings
from hulk_ops.core.model import JSON

R = TypeVar("R", bound=ActionRequest)


class ActionRefused(Exception):
    """The request cannot be done as asked; nothing was changed."""


class ActionFailed(Exception):
    """The backend failed (unreachable, timed out, error); the message is safe to show."""


class Executor(ABC, Generic[R]):
    actions: ClassVar[tuple[str, ...]]

    def __init__(self, target: TargetSettings, settings: ActionsSettings) -> None:
        self.target = target
        self.settings = settings
        self._secrets = [s for s in target.secrets() if s]

    @abstractmethod
    async def preview(self, request: R) -> Preview:
        """Read the current state and say what the request would do (no change)."""

    @abstractmethod
    async def _execute(self, request: R, preview: Preview) -> dict[str, JSON]:
        """Perform the write; return the state after it (the audit's `after`)."""

    async def run(self, request: R, preview: Preview, permit: Permit) -> dict[str, JSON]:
        permit.spend(request.fingerprint())
        return await self._execute(request, preview)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


# the executor of one request's action, as the guard holds it: EXECUTORS and REQUEST_TYPES pair executors and
# request types by action name, so it is only ever given requests of its own type
ActionExecutor: TypeAlias = Executor[ActionRequest]
