"""Fuzzing the config loader through `hulk-ops config check FILE`: whatever the file holds, the command
ends with exit 0 (valid) or exit 2 and a one-paragraph message naming the file, never a traceback.

The bulk runs in-process through `hulk_ops.entrypoints.cli.main` (10,000 generated files by default; set
`HULK_FUZZ_CONFIG_EXAMPLES` to change it); a handful run through a real `python -m hulk_ops` subprocess.
Generated files mix: a valid base config mutated (wrong types, unknown fields and kinds, duplicate names,
bad numbers and URLs, huge and unicode strings, `${ENV}` references to unset variables), random YAML
structures, broken YAML text and YAML that only PyYAML's loader can build (anchors, recursive aliases).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hulk_ops.entrypoints import cli
from hulk_ops.probes import registry

EXAMPLES = int(os.environ.get("HULK_FUZZ_CONFIG_EXAMPLES", "10000"))
settings.register_profile(
    # CI runs one fixed set of 10,000 files (no flake from a new draw); elsewhere each run draws new ones
    "config-fuzz", max_examples=EXAMPLES, deadline=None, derandomize=bool(os.environ.get("CI")), database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                           HealthCheck.function_scoped_fixture],
)

KINDS = list(registry.kinds())
UNSET = "HULK_FUZZ_SURELY_UNSET_VAR"
BASE: dict[str, Any] = {
    "store": {"redis_url": "redis://127.0.0.1:6379/0", "prefix": "hulk:"},
    "collector": {"concurrency": 8, "breaker": {"failures": 3, "reset_s": 30}},
    "audit": {"url": "postgresql://hulk:pw@127.0.0.1:5432/ops"},
    "actions": {"scale": [{"target": "k8s", "namespace": "shop", "deployment": "web", "min": 1, "max": 5}],
                "runpod": {"budget_usd": 50}},
    "targets": [
        {"name": "cache", "kind": "redis", "url": "redis://127.0.0.1:6379", "password": "pw"},
        {"name": "db", "kind": "postgres", "url": "postgresql://app:pw@127.0.0.1:5432/app", "depends_on": ["cache"]},
        {"name": "bus", "kind": "nats", "url": "nats://127.0.0.1:4222", "token": "t"},
        {"name": "vec", "kind": "qdrant", "url": "http://127.0.0.1:6333", "api_key": "k"},
        {"name": "graph", "kind": "neo4j", "url": "bolt://127.0.0.1:7687", "password": "pw"},
        {"name": "k8s", "kind": "kubernetes", "url": "https://127.0.0.1:6443", "token": "t"},
        {"name": "gpu", "kind": "runpod", "api_key": "k"},
        {"name": "prom", "kind": "prometheus", "url": "http://127.0.0.1:9090"},
        {"name": "web", "kind": "http", "url": "http://127.0.0.1:8080/health"},
        {"name": "port", "kind": "tcp", "url": "tcp://127.0.0.1:22"},
    ],
}
# every other registered kind (a plugin's too) by its own example target
BASE["targets"] += [{"name": f"ex-{kind}", **(registry.example(kind) or {})} for kind in KINDS
                    if kind not in {t["kind"] for t in BASE["targets"]} and registry.example(kind)]
FIELDS = ["name", "kind", "url", "interval_s", "timeout_s", "labels", "depends_on", "rules", "read_only", "slo",
          "password", "token", "api_key", "user", "username", "database", "streams", "namespaces", "endpoints",
          "collections", "max_streams", "page_size", "queries", "expect_status", "kubeconfig", "verify_tls",
          "colour", "", "名前"]
SECTIONS = ["store", "collector", "dashboard", "audit", "actions", "auth", "slo", "cost", "rules", "targets",
            "telemetry", "notify", "silences", "bogus"]

texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF, exclude_categories=("Cs",)),
            max_size=20),
    st.integers(1000, 20_000).map(lambda n: "x" * n),
    st.integers(100, 3000).map(lambda n: "é\u202e😀" * n),
    st.sampled_from(["", " ", "${" + UNSET + "}", "redis://:${" + UNSET + "}@h", "${}", "${1BAD}", "${A:-}",
                     "http://", "https://[::1", "http://h:99999", "bolt://u:p@h", "nats://", "://", "a b",
                     "\x00", "\ud7ff", "-1", "nan", "1e999", "0x1F", "yes", "~"]),
)
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(st.sampled_from(FIELDS), texts, st.integers()),
                                               children, max_size=4)),
    max_leaves=12,
)


def _dump(data: Any, allow_unicode: bool) -> str:
    return yaml.dump(data, Dumper=_DUMPER, allow_unicode=allow_unicode, sort_keys=False)


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@st.composite
def mutated_config(draw: st.DrawFn) -> str:
    """A valid config with a few random edits: set, delete or duplicate fields, targets and sections."""
    import copy

    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["target_field", "drop_field", "dup_target", "section", "section_field",
                                   "kind", "top"]))
        targets = data.get("targets")
        if op in ("target_field", "drop_field", "dup_target", "kind") and isinstance(targets, list) and targets:
            i = draw(st.integers(0, len(targets) - 1))
            target = targets[i]
            if not isinstance(target, dict):
                continue
            if op == "target_field":
                target[draw(st.sampled_from(FIELDS))] = draw(values)
            elif op == "drop_field" and target:
                target.pop(draw(st.sampled_from(sorted(target, key=str))), None)
            elif op == "dup_target":
                targets.append(dict(target))
            else:
                target["kind"] = draw(st.one_of(st.sampled_from([*KINDS, "mongo", "REDIS", ""]), values))
        elif op == "section":
            data[draw(st.sampled_from(SECTIONS))] = draw(values)
        elif op == "section_field":
            section = draw(st.sampled_from(SECTIONS))
            if isinstance(data.get(section), dict):
                data[section][draw(st.one_of(texts, st.sampled_from(FIELDS)))] = draw(values)
        elif draw(st.booleans()):
            data = draw(values)  # the whole document replaced by something else
            break
    return _dump(data, allow_unicode=draw(st.booleans()))


YAML_PIECES = ["targets:", "  - ", "{", "}", "[", "]", ": ", "- ", "\n", "  ", "&a ", "*a", "!!python/object:os.system",
               "!!binary", "'", '"', "|", ">", "%YAML 1.1\n", "---\n", "...\n", "? ", ",", "#", "\t", "\\u0000",
               "name: a", "kind: redis", "url: x", "${X}", "<<: *a", "!!float", "0o17", ".inf", "~"]
broken_yaml = st.lists(st.one_of(st.sampled_from(YAML_PIECES), st.text(max_size=8)), max_size=30).map("".join)
recursive_yaml = st.sampled_from([
    "targets: &a [*a]\n",
    "a: &a {b: *a}\ntargets: []\n",
    "targets:\n  - &t {name: a, kind: redis, url: x, labels: *t}\n",
    "store: &s {prefix: *s}\n",
    "x: &x [[*x]]\n",
    "targets: [{name: a, kind: redis, url: x, depends_on: &d [*d]}]\n",
    "rules: &r {redis: *r}\n",
])
deep_yaml = st.integers(30, 400).map(lambda n: "targets: " + "[" * n + "]" * n + "\n")
config_texts = st.one_of(
    mutated_config(), mutated_config(), mutated_config(),
    values.map(lambda v: _dump(v, allow_unicode=True)),
    broken_yaml, recursive_yaml, deep_yaml,
)


def _check(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["config", "check", str(path)])
    return code, out.getvalue(), err.getvalue()


def _assert_clean(path: Path, code: int, out: str, err: str) -> None:
    assert code in (0, 2), (code, out, err)
    assert "Traceback" not in out + err
    if code == 0:
        assert out.startswith(f"{path}: OK"), out
    else:
        assert err.startswith(f"hulk-ops: config error: {path}"), err[:500]
        # each line names the file and then where in it (a target, a field or the YAML position)
        for line in err.removeprefix("hulk-ops: config error: ").splitlines():
            assert line.startswith(f"{path}: ") and len(line) > len(str(path)) + 2, line[:300]


def test_config_check_fuzz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # argparse takes ~7 ms to build the full command tree; one parser serves every example (parse_args does not
    # change it), everything after parsing is main() as a person runs it
    monkeypatch.setattr(cli, "build_parser", functools.cache(cli.build_parser))
    # one file rewritten per example; in memory where the machine has /dev/shm (a busy disk adds ms per open)
    shm = Path("/dev/shm")
    workdir = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    path = workdir / "fuzz.yaml"
    os.environ.pop(UNSET, None)
    codes: dict[int, int] = {0: 0, 2: 0}

    @settings.get_profile("config-fuzz")
    @given(text=config_texts)
    def run(text: str) -> None:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        code, out, err = _check(path)
        _assert_clean(path, code, out, err)
        codes[code] += 1

    started, cpu = time.perf_counter(), time.process_time()
    try:
        run()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    total = codes[0] + codes[2]
    print(f"\nconfig fuzz: {total} files in {elapsed:.1f} s wall, {cpu:.1f} s CPU "
          f"({codes[0]} valid, {codes[2]} rejected with exit 2)")
    assert total >= min(EXAMPLES, 1000)
    assert codes[2] > codes[0] > 0  # both paths were exercised


@pytest.mark.parametrize("text", [
    "targets: &a [*a]\n",
    "targets: [{name: a, kind: redis, url: 'redis://:${" + UNSET + "}@h'}]\n",
    "targets: [{name: a, kind: mongo, url: x}, {name: a, kind: redis, url: y}]\n",
    "targets: [{name: q, kind: qdrant, url: 'ftp://h', max_collections: -1}]\n",
    "targets: [" * 2000 + "]" * 2000 + "\n",
    "\x00\x01\x02 not yaml: [",
])
def test_config_check_subprocess_exits_2_without_traceback(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != UNSET}
    proc = subprocess.run([sys.executable, "-m", "hulk_ops", "config", "check", str(path)],
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"hulk-ops: config error: {path}: "), proc.stderr[:300]


def test_config_check_binary_file_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage\x80")
    code, out, err = _check(path)
    _assert_clean(path, code, out, err)
    assert code == 2
