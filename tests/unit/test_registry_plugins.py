"""The registry's verdict on plugin entry points that break the kind contract: each named, none harming others."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from hulk_ops.probes import registry

pytestmark = pytest.mark.unit

GOOD = '''
from typing import Literal
from hulk_ops.sdk import Measurement, Probe, TargetSettings

class Settings(TargetSettings):
    kind: Literal["{kind}"]

class P(Probe):
    kind = "{probe_kind}"
    async def _connect(self):
        return None
    async def _measure(self, client):
        return Measurement(metrics={{"x": 1}})

PROBE = P
'''


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    modules = {
        "plug_ok": GOOD.format(kind="okay", probe_kind="okay"),
        "plug_literal": GOOD.format(kind="other", probe_kind="wrongliteral"),
        "plug_probe_kind": GOOD.format(kind="probekind", probe_kind="nope"),
        "plug_no_probe": "from typing import Literal\nfrom hulk_ops.sdk import TargetSettings\n"
                         "class Settings(TargetSettings):\n    kind: Literal['noprobe']\n",
    }
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    builtin = list(registry.entry_points(group=registry.GROUP))
    extra = [EntryPoint(n, v, registry.GROUP) for n, v in [
        ("okay", "plug_ok"), ("wrongliteral", "plug_literal"), ("probekind", "plug_probe_kind"),
        ("noprobe", "plug_no_probe"), ("Bad-Name", "plug_ok"), ("attr", "plug_ok:PROBE"), ("okay", "plug_literal"),
    ]]
    monkeypatch.setattr(registry, "entry_points", lambda group: [*builtin, *extra])
    registry.refresh()
    yield
    monkeypatch.undo()
    for name in modules:
        sys.modules.pop(name, None)
    registry.refresh()


def test_contract_breaches_are_reported_by_name(plugins) -> None:
    assert registry.module("okay").PROBE.kind == "okay"
    for kind, words in [("wrongliteral", 'Settings whose kind is not Literal["wrongliteral"]'),
                        ("probekind", "PROBE whose kind is 'nope', not 'probekind'"),
                        ("noprobe", "has no PROBE")]:
        with pytest.raises(registry.KindError, match=f"kind '{kind}' .*{words}".replace("[", r"\[").replace(
                "(", r"\(")):
            registry.module(kind)
    problems = "\n".join(registry.problems())
    assert "(Bad-Name = plug_ok): kind name must match" in problems
    assert "(attr = plug_ok:PROBE): the entry point must name a module, not an attribute" in problems
    assert "(okay = plug_literal): ignored, kind 'okay' is already registered" in problems
    assert {"okay", "redis"} <= set(registry.modules()) and "noprobe" not in registry.modules()
