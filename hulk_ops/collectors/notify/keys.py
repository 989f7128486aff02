"""Redis keys of notifications and silences (shared by the collector's notifier and the dashboard).

The incident state and the outboxes are written in one MULTI/EXEC, so they share the `{notify}` hash tag (one
slot on a Redis Cluster); the others are single keys.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NotifyKeys:
    prefix: str = "hulk:"

    @property
    def incidents(self) -> str:
        return f"{self.prefix}{{notify}}:incidents"

    def queue(self, webhook: str) -> str:
        return f"{self.prefix}{{notify}}:q:{webhook}"

    def untagged(self, key: str) -> str:
        """The name an earlier layout gave `key` (no hash tag), adopted once by the notifier."""
        return key.replace("{notify}", "notify", 1)

    @property
    def log(self) -> str:
        return f"{self.prefix}notify:log"

    @property
    def seq(self) -> str:
        return f"{self.prefix}notify:seq"

    @property
    def burn(self) -> str:
        """JSON: the error-budget burn alerts open now (hulk_ops/core/burn.py)."""
        return f"{self.prefix}{{notify}}:burn"

    @property
    def leader(self) -> str:
        return f"{self.prefix}notify:leader"

    @property
    def silences(self) -> str:
        return f"{self.prefix}silences"
