"""Fuzzing action parameters through the guard: invalid input is refused as bad input, never executed.

Hypothesis builds requests for purge-stream, scale, restart, launch-gpu, endpoint-workers and stop-pod with one
field broken (negative or huge numbers, names that are not names, shell/GraphQL/SQL injection strings, wrong
types, missing or unknown fields). Each must fail `parse_request` with a message naming the field; the same
values forced past the parser (`model_construct`) must still be stopped by the guard (`BadRequest`) before an
executor or the audit store is touched; and through `hulk-ops action ...` they exit 2 without running anything.
Per docs/ACTIONS.md bad input (exit 2) is not a refusal and writes no audit row; refusals of valid input
(out of bounds, over budget, unknown object) are audited: tests/integration/test_fuzz_guard_sim.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hulk_ops.actions import model as m
from hulk_ops.actions.guard import GuardedAction
from hulk_ops.actions.model import REQUEST_TYPES, BadRequest, Principal, parse_request
from hulk_ops.core.action_config import ActionsSettings, ScaleBounds
from hulk_ops.core.config import Config
from hulk_ops.entrypoints import cli
from tests.unit.fakes_actions import MemoryAuditLog, RecordingExecutor
from tests.unit.test_actions_guard import targets

ADMIN = Principal(name="ada", roles=("admin",), via="test")
VALID: dict[str, dict[str, Any]] = {
    "purge_stream": {"target": "nats-dev", "stream": "ORDERS", "subject": "orders.eu", "keep": 10},
    "scale": {"target": "kubernetes-dev", "namespace": "shop", "deployment": "web", "replicas": 3},
    "launch_gpu": {"target": "runpod-dev", "gpu_type": "NVIDIA A40", "count": 1, "image": "img:1", "max_hours": 2,
                   "name": "job-1", "cloud_type": "ALL", "env": {"MODE": "fast"}},
    "stop_pod": {"target": "runpod-dev", "pod_id": "pod1"},
    "restart": {"target": "kubernetes-dev", "namespace": "shop", "deployment": "web"},
    "endpoint_workers": {"target": "runpod-dev", "endpoint": "ep1", "min_workers": 0, "max_workers": 4},
}
REQUIRED = {"purge_stream": ["stream"], "scale": ["namespace", "deployment", "replicas"],
            "launch_gpu": ["gpu_type", "image", "max_hours"], "stop_pod": ["pod_id"],
            "restart": ["namespace", "deployment"], "endpoint_workers": ["endpoint", "min_workers", "max_workers"]}
PATTERNS = {"stream": m.STREAM_NAME, "subject": m.SUBJECT, "namespace": m.K8S_NAME, "deployment": m.K8S_NAME,
            "gpu_type": m.GPU_TYPE, "image": m.IMAGE, "pod_id": m.POD_ID, "endpoint": m.POD_ID,
            "name": r"^[A-Za-z0-9._-]{1,64}$"}
INT_BOUNDS = {"keep": (1, 10**12), "replicas": (0, 10_000), "count": (1, 64), "min_workers": (0, 1000),
              "max_workers": (0, 1000)}
INJECTIONS = ["'; DROP TABLE audit_log; --", "$(rm -rf /)", "`id`", "a\" } mutation { terminatePod", "../../etc",
              "web\nreplicas: 99", "${HOME}", "{{ RUNPOD_SECRET_x }}", "<script>alert(1)</script>", "\x00", "a b",
              "ORDERS.>", "*", "", " ", "Web", "-web", "web-", "x" * 300, "é", "\u202eweb", "%s%s%n", "null"]

good_settings = settings(max_examples=150, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def bad_string(pattern: str) -> st.SearchStrategy[Any]:
    text = st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=80))
    return st.one_of(
        text.filter(lambda s: not re.fullmatch(pattern, s.strip())),
        st.integers(), st.floats(), st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5),
                                                                                               st.integers()),
    )


def bad_int(lo: int, hi: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(max_value=lo - 1), st.integers(min_value=hi + 1), st.sampled_from([2**63, -(2**63), 10**30]),
        st.floats().filter(lambda f: not (math.isfinite(f) and f.is_integer() and lo <= f <= hi)),
        st.booleans(), st.sampled_from(["three", "", "1e3", "0x10", "-1; rm", "${N}", "1_000_000_000_000_000"]),
        st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )


def bad_value(field: str) -> st.SearchStrategy[Any]:
    if field in PATTERNS:
        return bad_string(PATTERNS[field])
    if field in INT_BOUNDS:
        return bad_int(*INT_BOUNDS[field])
    if field == "max_hours":
        return st.one_of(st.floats(max_value=0), st.floats(min_value=24 * 31, exclude_min=True),
                         st.just(math.nan), st.booleans(), st.text(max_size=5).filter(_not_number))
    if field == "cloud_type":
        return st.one_of(st.sampled_from(["all", "SPOT", "", "SECURE\n"]), st.integers(), st.none())
    if field == "env":
        return st.one_of(
            st.dictionaries(st.sampled_from(["1BAD", "A B", "", "A-B", "é", "X" * 200]), st.text(max_size=5),
                            min_size=1, max_size=2),
            st.dictionaries(st.sampled_from(["MODE", "HF_TOKEN"]),
                            st.sampled_from(['a"b', "a\\b", "line\nbreak", 'x" } }']), min_size=1, max_size=2),
            st.lists(st.text(max_size=3), min_size=1, max_size=2), st.text(min_size=1, max_size=5), st.integers(),
        )
    if field == "target":
        return st.one_of(st.just(""), st.just("x" * 129), st.integers(), st.none(), st.lists(st.text(), max_size=1))
    raise AssertionError(field)


def _not_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return True
    return not (0 < value <= 24 * 31)


@st.composite
def invalid_request(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    """(action, the field broken, the request data)."""
    action = draw(st.sampled_from(sorted(VALID)))
    data = {"action": action, **VALID[action]}
    how = draw(st.sampled_from(["value", "value", "value", "missing", "unknown"]))
    if how == "missing":
        field = draw(st.sampled_from(REQUIRED[action]))
        del data[field]
    elif how == "unknown":
        field = draw(st.sampled_from(["replica", "force", "__class__", "stream_name", "podId", "sql"]))
        data[field] = draw(st.one_of(st.text(max_size=10), st.integers(), st.booleans()))
    else:
        field = draw(st.sampled_from([f for f in data if f != "action"]))
        data[field] = draw(bad_value(field))
    return action, field, data


def make_guard() -> tuple[GuardedAction, MemoryAuditLog]:
    RecordingExecutor.reset()
    config = Config(targets=targets(), actions=ActionsSettings(
        four_eyes=False, scale=[ScaleBounds(target="kubernetes-dev", namespace="shop", deployment="web", max=9)]))
    audit = MemoryAuditLog()
    return GuardedAction(config, audit=audit, executors=dict.fromkeys(REQUEST_TYPES, RecordingExecutor)), audit


@good_settings
@given(case=invalid_request())
def test_invalid_parameters_are_rejected_naming_the_field(case: tuple[str, str, dict[str, Any]]) -> None:
    _action, field, data = case
    with pytest.raises(BadRequest) as info:
        parse_request(data)
    message = str(info.value)
    assert field in message, (message, data)
    assert "Traceback" not in message and len(message) < 2000


@good_settings
@given(case=invalid_request())
def test_invalid_requests_forced_past_the_parser_never_reach_an_executor(
        case: tuple[str, str, dict[str, Any]]) -> None:
    action, field, data = case
    assume(field in VALID[action])  # model_construct drops unknown fields: such a request is simply valid
    guard, audit = make_guard()
    forced = REQUEST_TYPES[action].model_construct(**{k: v for k, v in data.items() if k != "action"})
    confirm = next((str(data[f]) for f in ("stream", "deployment", "pod_id") if f in data), str(data.get("target")))

    async def go() -> None:
        for attempt in (guard.dry_run(ADMIN, forced), guard.submit(ADMIN, forced, confirm=confirm)):
            with pytest.raises(BadRequest):
                await attempt

    asyncio.run(go())
    assert RecordingExecutor.executed == []
    assert audit.rows == []  # bad input is not a refusal: nothing reached the audit store either


def test_valid_samples_do_execute() -> None:
    """The control: the same guard runs the valid versions, so the rejections above are about the input."""
    guard, _audit = make_guard()
    for action, data in VALID.items():
        request = parse_request({"action": action, **data})
        result = asyncio.run(guard.submit(ADMIN, request, confirm=request.object_name))
        assert result.status == "succeeded", result.message
    assert len(RecordingExecutor.executed) == len(VALID)


CLI_CASES = [
    (["scale", "--target", "k8s", "--namespace", "shop", "--deployment", "web", "--replicas", "-3"], "replicas"),
    (["scale", "--target", "k8s", "--namespace", "shop", "--deployment", "web", "--replicas", "99999999"],
     "replicas"),
    (["scale", "--target", "k8s", "--namespace", "shop; rm -rf /", "--deployment", "web", "--replicas", "2"],
     "namespace"),
    (["purge-stream", "--target", "bus", "--stream", "ORDERS.>"], "stream"),
    (["purge-stream", "--target", "bus", "--stream", "ORDERS", "--keep", "0"], "keep"),
    (["launch-gpu", "--target", "gpu", "--gpu-type", 'A40" } mutation {', "--image", "i:1", "--max-hours", "1"],
     "gpu_type"),
    (["launch-gpu", "--target", "gpu", "--gpu-type", "A40", "--image", "i:1", "--max-hours", "-1"], "max_hours"),
    (["launch-gpu", "--target", "gpu", "--gpu-type", "A40", "--image", "i:1", "--max-hours", "1", "--count", "0"],
     "count"),
    (["launch-gpu", "--target", "gpu", "--gpu-type", "A40", "--image", "i:1", "--max-hours", "1",
      "--env", "HF_TOKEN=a\"b"], "env"),
    (["stop-pod", "--target", "gpu", "--pod", "pod/../../x"], "pod_id"),
    (["stop-pod", "--target", "bus", "--pod", "pod1"], "runpod"),  # wrong kind of target
    (["stop-pod", "--target", "nope", "--pod", "pod1"], "unknown target"),
]


@pytest.mark.parametrize(("args", "named"), CLI_CASES)
def test_cli_bad_action_input_exits_2_and_runs_nothing(tmp_path: Path, args: list[str], named: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"targets": [
        {"name": "k8s", "kind": "kubernetes", "url": "http://127.0.0.1:9", "token": "t"},
        {"name": "bus", "kind": "nats", "url": "nats://127.0.0.1:9"},
        {"name": "gpu", "kind": "runpod", "api_key": "k", "url": "http://127.0.0.1:9"},
    ]}))
    out, err = io.StringIO(), io.StringIO()
    confirm = ["--confirm", "x"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["action", *args, "--config", str(path), *confirm])
    assert code == 2, (out.getvalue(), err.getvalue())
    assert named in err.getvalue(), err.getvalue()
    assert "Traceback" not in out.getvalue() + err.getvalue()
