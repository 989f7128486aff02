"""Config loading: valid files load; every bad file gives one message naming file, target and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hulk_ops.core.config import ConfigError, load_config, parse_config, redact_url

GOOD = """
store: {redis_url: "redis://127.0.0.1:6379/0"}
targets:
  - {name: cache, kind: redis, url: "redis://127.0.0.1:6379", labels: {env: production}}
  - name: db
    kind: postgres
    url: "postgresql://app:${PG_PASSWORD}@127.0.0.1:5432/app"
    interval_s: 30
    depends_on: [cache]
  - {name: bus, kind: nats, url: "nats://127.0.0.1:4222", rules: ["consumer.*.pending > 10"]}
"""


def test_good_config_loads_with_defaults_and_interpolation() -> None:
    config = parse_config(GOOD, "good.yaml", environ={"PG_PASSWORD": "s3cret-pw"})
    assert [t.name for t in config.targets] == ["cache", "db", "bus"]
    cache, db, bus = config.targets
    assert (cache.interval_s, cache.timeout_s) == (15.0, 5.0)
    assert db.url == "postgresql://app:s3cret-pw@127.0.0.1:5432/app"
    assert db.depends_on == ["cache"]
    assert "s3cret-pw" in config.secrets()
    assert redact_url(db.url) == "postgresql://app:***@127.0.0.1:5432/app"
    rules = {r.glob: r.value for r in config.rule_set(bus).rules}
    assert rules["consumer.*.pending"] == 10  # the target's rule replaced the kind default


def test_short_interval_pulls_the_default_timeout_down() -> None:
    config = parse_config("targets: [{name: a, kind: redis, url: 'redis://x', interval_s: 2}]")
    assert config.targets[0].timeout_s == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("targets: [{name: a, kind: redis, url: x\n", ["bad.yaml", "invalid YAML", "line"]),
        ("targets: [{name: a, kind: mongo, url: x}]", ["bad.yaml", "target 'a'", "kind", "unknown kind 'mongo'"]),
        ("targets: [{name: a, kind: redis, url: x}, {name: a, kind: nats, url: y}]",
         ["bad.yaml", "target 'a' (targets[1])", "name", "duplicate"]),
        ("targets: [{name: a, kind: redis}]", ["bad.yaml", "target 'a'", "url", "field required"]),
        ("targets: [{name: a, kind: redis, url: x, interval_s: fast}]",
         ["bad.yaml", "target 'a'", "interval_s", "valid number"]),
        ("targets: [{name: a, kind: redis, url: x, timeout_s: 0}]", ["bad.yaml", "target 'a'", "timeout_s"]),
        ("targets: [{name: a, kind: redis, url: x, interval_s: 5, timeout_s: 9}]",
         ["bad.yaml", "target 'a'", "timeout_s (9.0) must not exceed interval_s"]),
        ("targets: [{name: a, kind: redis, url: x, colour: red}]",
         ["bad.yaml", "target 'a'", "colour", "unknown field"]),
        ("targets: [{name: a, kind: redis, url: x, depends_on: [b]}]",
         ["bad.yaml", "target 'a'", "depends_on", "unknown target 'b'"]),
        ("targets: [{name: a, kind: redis, url: x, depends_on: [b]}, {name: b, kind: redis, url: y, depends_on: [a]}]",
         ["bad.yaml", "cycle"]),
        ("targets: [{name: a, kind: redis, url: 'redis://:${NOPE}@h'}]",
         ["bad.yaml", "targets[0].url", "environment variable NOPE is not set"]),
        ("targets: [{name: 'a b', kind: redis, url: x}]", ["bad.yaml", "name", "pattern"]),
        ("targets: [{name: a, kind: redis, url: x, rules: ['memory > lots']}]", ["bad.yaml", "target 'a'", "rules"]),
        ("store: {redis_url: 1, colour: x}", ["bad.yaml", "store.colour", "unknown field"]),
        ("targets: {a: 1}", ["bad.yaml", "targets", "list"]),
        ("- just\n- a list", ["bad.yaml", "top level"]),
        ("targets: [{kind: redis, url: x}]", ["bad.yaml", "targets[0]", "name", "field required"]),
        ("targets: [{name: a, url: x}]", ["bad.yaml", "target 'a'", "kind", "field required"]),
        ("rules: {mongo: ['x > 1']}", ["bad.yaml", "rules.mongo", "unknown kind"]),
        ("collector: {buffer_max: 10}", ["bad.yaml", "collector.buffer_max", "greater than or equal to 100"]),
        ("collector: {buffer_max: 20000000}", ["bad.yaml", "collector.buffer_max", "less than or equal to"]),
        ("collector: {buffer_max: many}", ["bad.yaml", "collector.buffer_max", "valid integer"]),
    ],
)
def test_bad_config_names_file_target_and_field(text: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bad.yaml", environ={})
    message = str(info.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Traceback" not in message


def test_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")


def test_cli_config_check_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("targets: [{name: a, kind: redis, url: 'redis://127.0.0.1:6379'}]")
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [{name: a, kind: redis, url: x, interval_s: -3}]")
    ok = subprocess.run([sys.executable, "-m", "hulk_ops", "config", "check", str(good)],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "OK, 1 targets (redis)" in ok.stdout
    failed = subprocess.run([sys.executable, "-m", "hulk_ops", "config", "check", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2
    assert f"{bad}: target 'a' (targets[0]): interval_s: Input should be greater than 0" in failed.stderr
    assert "Traceback" not in failed.stderr
    usage = subprocess.run([sys.executable, "-m", "hulk_ops", "probe"], capture_output=True, text=True,
                           timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert usage.returncode == 2
    assert "no config" in usage.stderr


def test_a_key_ending_in_a_line_break_is_quoted_so_the_message_stays_one_line():
    with pytest.raises(ConfigError) as err:
        parse_config("? '0\n\n  '\n: null\n", "x.yaml")
    assert all(line.startswith("x.yaml: ") for line in str(err.value).splitlines()), str(err.value)
