"""Who may do what: the roles x actions matrix, decided on the server for every request.

Deny by default: a person without a known role, an action this table does not name, a read-only
target, all are refused. The matrix (four_eyes on / off changes only the production column):

    role       non-production   production (env: production)        approve a waiting request
    viewer     deny             deny                                deny
    operator   allow            four_eyes: approval / off: deny     deny
    admin      allow            four_eyes: approval / off: allow    allow, never their own

Dry-runs are decided like the action itself ("approval" counts as allowed: the dry-run is what the
approver will look at). Viewers get no action controls at all, dry-runs included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hulk_ops.actions.model import REQUEST_TYPES, Principal
from hulk_ops.core.action_config import ActionsSettings
from hulk_ops.core.config import TargetSettings

Verdict = Literal["allow", "approval", "deny"]
WRITE_ACTIONS: tuple[str, ...] = tuple(REQUEST_TYPES)


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"


def is_production(target: TargetSettings) -> bool:
    return target.labels.get("env", "").lower() == "production"


def authorise(principal: Principal, action: str, target: TargetSettings, settings: ActionsSettings) -> Decision:
    role = principal.role
    if action not in WRITE_ACTIONS:
        return Decision("deny", f"unknown action {action!r}")
    if role is None:
        return Decision("deny", f"{principal.name} has no role")
    if target.read_only:
        return Decision("deny", f"target {target.name} is read-only (read_only: true in config)")
    if role == "viewer":
        return Decision("deny", f"{principal.name} is a viewer: viewers cannot act")
    if not is_production(target):
        return Decision("allow", f"{role} on a non-production target")
    if settings.four_eyes:
        return Decision("approval", f"{target.name} is production: an admin other than {principal.name} must approve")
    if role == "admin":
        return Decision("allow", "admin on production (four_eyes is off)")
    return Decision("deny", f"{target.name} is production: operators act on non-production targets only")


def authorise_approval(principal: Principal, requester: str, target: TargetSettings) -> Decision:
    if principal.role != "admin":
        return Decision("deny", f"{principal.name} is not an admin: only admins approve")
    if principal.name == requester:
        return Decision("deny", "four-eyes: a request cannot be approved by the person who made it")
    if target.read_only:
        return Decision("deny", f"target {target.name} is read-only (read_only: true in config)")
    return Decision("allow", f"approved by admin {principal.name}")


def offered(principal: Principal, target: TargetSettings, settings: ActionsSettings,
            kind_actions: list[str]) -> list[str]:
    """The actions the UI shows for a target (the guard refuses the others regardless)."""
    return [a for a in kind_actions if authorise(principal, a, target, settings).verdict != "deny"]
