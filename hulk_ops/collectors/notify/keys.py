"""Redis keys of notifications and silences (shared by the collector's notifier and the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NotifyKeys:
    prefix: str = "hulk:"

    @property
    def incidents(self) -> str:
        return f"{self.prefix}notify:incidents"

    def queue(self, webhook: str) -> str:
        return f"{self.prefix}notify:q:{webhook}"

    @property
    def log(self) -> str:
        return f"{self.prefix}notify:log"

    @property
    def seq(self) -> str:
        return f"{self.prefix}notify:seq"

    @property
    def burn(self) -> str:
        """JSON: the error-budget burn alerts open now (hulk_ops/core/burn.py)."""
        return f"{self.prefix}notify:burn"

    @property
    def leader(self) -> str:
        return f"{self.prefix}notify:leader"

    @property
    def silences(self) -> str:
        return f"{self.prefix}silences"
