"""Fixture plugins (`tests/fixtures_*.py`) are global once any test module loads them: two plugins defining
a fixture of the same name silently replace one another, and the tests of one get the other's object."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _fixtures(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                if ast.unparse(target) in ("pytest.fixture", "fixture", "pytest_asyncio.fixture"):
                    names.add(node.name)
    return names


def test_no_two_fixture_plugins_define_the_same_fixture() -> None:
    owners: dict[str, list[str]] = defaultdict(list)
    for path in sorted([TESTS / "conftest.py", *TESTS.glob("fixtures_*.py")]):
        for name in _fixtures(path):
            owners[name].append(path.name)
    clashes = {name: files for name, files in owners.items() if len(files) > 1}
    assert not clashes, f"fixtures defined in more than one plugin: {clashes}"
    assert "store_prefix" in owners  # the scan really sees the fixtures
