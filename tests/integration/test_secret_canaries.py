"""Canary secrets: a unique value in every secret field of the config, then everything hulk-ops outputs is
searched for them.

Targets point at closed ports (errors) or at `EchoServer`, which answers every request with 401 and a body
that repeats the request (headers, path, query, body): a backend echoing the API key back in an error. The
collector runs (its log lines captured), every dashboard page renders with AppTest, actions fail (a RunPod
launch and a Kubernetes scale against the echo server, audited in the real PostgreSQL), a bad config is
rejected; then ProbeResults, every key under the store prefix, each page's elements, result and exception
messages, the audit rows, /metrics and the OTel spans are grepped for every canary.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp import web
from streamlit.testing.v1 import AppTest

from hulk_ops.actions.guard import GuardedAction
from hulk_ops.actions.identity import hash_secret, new_token
from hulk_ops.actions.model import LaunchGpuPod, Principal, ScaleDeployment
from hulk_ops.collectors.codec import Keys
from hulk_ops.core.config import ConfigError, load_config, parse_config
from hulk_ops.dashboard.nav import PAGES
from hulk_ops.entrypoints import cli
from hulk_ops.entrypoints.service import run_collector
from hulk_ops.observe import logs
from hulk_ops.probes import registry
from sandbox.services import free_port
from sandbox.simbase import HttpSimulator
from tests.waiting import await_for

pytest_plugins = ["tests.fixtures_actions", "tests.fixtures_observe"]
APP = str(Path(__file__).resolve().parents[2] / "hulk_ops" / "dashboard" / "app.py")
ADMIN = Principal(name="ada", roles=("admin",), via="test")
RUN = uuid.uuid4().hex[:8]
CANARIES = {name: f"cnry{name}{RUN}" for name in (
    "pgurl", "redispw", "redisurl", "natstoken", "natspw", "neo4jpw", "qdrantkey", "k8stoken", "runpodkey",
    "prombearer", "prompw", "httpheader", "httpurl", "webhookpath", "webhookheader", "otlpheader", "auditpw",
)}
# kinds the config below does not spell out (new and plugin kinds): their example target with a canary in every
# secret field, pointed at the closed port
SPELLED_OUT = {"postgres", "redis", "nats", "neo4j", "qdrant", "kubernetes", "runpod", "prometheus", "http", "tcp"}
OTHER_KINDS = {k: registry.example(k) or {} for k in registry.kinds() if k not in SPELLED_OUT}
SECRET_FIELDS = {k: [f for f, info in registry.settings_model(k).model_fields.items()
                     if "SecretStr" in str(info.annotation)] for k in OTHER_KINDS}
CANARIES.update({f"{k}{f}": f"cnry{k}{f}{RUN}" for k, fields in SECRET_FIELDS.items() for f in fields})


def other_targets(closed: int) -> list[dict[str, Any]]:
    out = []
    for kind, example in OTHER_KINDS.items():
        url = re.sub(r"://([^/@]*@)?[^/:]+(:\d+)?", f"://127.0.0.1:{closed}", str(example.get("url", "")), count=1)
        secrets = {f: CANARIES[f"{kind}{f}"] for f in SECRET_FIELDS[kind]}
        out.append({**example, "name": f"other-{kind}", "url": url, **secrets})
    return out


class EchoServer(HttpSimulator):
    """Every request gets 401 and a JSON body repeating the request: method, path and query, headers, body."""

    name = "echo"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._echo)

    async def _echo(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode("utf-8", "replace")
        # the credentials first, so that no client's truncation of an error body cuts them off
        creds = " ".join(f"{k}={v}" for k, v in request.headers.items() if k.lower() not in ("host", "user-agent",
                                                                                             "accept-encoding"))
        said = f"invalid credentials {creds} {request.query_string} {body[:300]}"
        echoed = {"error": said, "message": said, "path": request.path_qs, "errors": [{"message": said}]}
        return web.json_response(echoed, status=401)


def canary_config(echo: str, closed: int, audit: dict[str, Any]) -> dict[str, Any]:
    c = CANARIES
    return {
        "audit": {**audit, "url": _with_password(audit["url"], c["auditpw"])},  # trust auth: ignored
        "actions": {"four_eyes": False, "timeout_s": 3,
                    "scale": [{"target": "k8s", "namespace": "shop", "deployment": "web", "max": 9}]},
        "notify": {"webhooks": [{"name": "hook", "url": f"http://127.0.0.1:{closed}/hooks/{c['webhookpath']}",
                                 "headers": {"X-Token": c["webhookheader"]}}]},
        "telemetry": {"headers": {"Authorization": c["otlpheader"]}},
        "collector": {"breaker": {"failures": 100}},
        "targets": [
            {"name": "pg", "kind": "postgres", "url": f"postgresql://app:{c['pgurl']}@127.0.0.1:{closed}/app"},
            {"name": "cache", "kind": "redis", "url": f"redis://127.0.0.1:{closed}", "password": c["redispw"]},
            {"name": "cache2", "kind": "redis", "url": f"redis://:{c['redisurl']}@127.0.0.1:{closed}/0"},
            {"name": "bus", "kind": "nats", "url": f"nats://127.0.0.1:{closed}", "token": c["natstoken"]},
            {"name": "bus2", "kind": "nats", "url": f"nats://127.0.0.1:{closed}", "user": "u",
             "password": c["natspw"]},
            {"name": "graph", "kind": "neo4j", "url": f"bolt://127.0.0.1:{closed}", "password": c["neo4jpw"]},
            {"name": "vec", "kind": "qdrant", "url": echo, "api_key": c["qdrantkey"]},
            {"name": "k8s", "kind": "kubernetes", "url": echo, "token": c["k8stoken"]},
            {"name": "gpu", "kind": "runpod", "url": echo, "endpoint_url": f"{echo}/v2", "api_key": c["runpodkey"],
             "endpoints": ["ep1"]},
            {"name": "prom", "kind": "prometheus", "url": echo, "bearer_token": c["prombearer"]},
            {"name": "prom2", "kind": "prometheus", "url": echo, "username": "u", "password": c["prompw"]},
            {"name": "web", "kind": "http", "url": f"{echo}/health", "headers": {"Authorization": c["httpheader"]}},
            {"name": "web2", "kind": "http", "url": echo.replace("://", f"://u:{c['httpurl']}@") + "/x"},
            *other_targets(closed),
        ],
    }


def _with_password(url: str, password: str) -> str:
    if re.search(r"://[^/@]+@", url):
        return re.sub(r"://([^:/@]+)(:[^@]*)?@", rf"://\1:{password}@", url, count=1)
    return url.replace("://", f"://canary:{password}@", 1)


def leaks(text: str, canaries: dict[str, str] | None = None) -> list[str]:
    return [name for name, value in (canaries or CANARIES).items() if value in text]


def store_dump(url: str, prefix: str) -> str:
    client = redis.Redis.from_url(url)
    out = []
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            kind = client.type(key).decode()
            if kind == "hash":
                value: Any = client.hgetall(key)
            elif kind == "stream":
                value = client.xrange(key)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            else:
                value = client.get(key)
            out.append(f"{key!r} {value!r}")
    finally:
        client.close()
    return "\n".join(out)


def element_dump(node: Any) -> list[str]:
    out = []
    proto = getattr(node, "proto", None)
    if proto is not None:
        out.append(str(proto))
    for child in getattr(node, "children", {}).values():
        out.extend(element_dump(child))
    return out


@pytest.fixture
def echo():
    server = EchoServer().start()
    yield server
    server.stop()


async def test_no_canary_secret_leaks_anywhere(write_config, store_redis_url, store_prefix, audit_schema, echo,
                                               spans, capfd, monkeypatch) -> None:
    closed = free_port()
    data = canary_config(echo.url, closed, audit_schema.model_dump())
    token_id, token, token_hash = new_token()  # a local user's API token (only its hash is in the config)
    data["auth"] = {"users": [{"name": "olga", "role": "operator", "token_id": token_id, "token_hash": token_hash,
                               "password_hash": hash_secret(f"cnrypassword{RUN}")}]}
    path = write_config(data.pop("targets"), **data)
    config = load_config(path)
    secrets = set(config.secrets())
    missing = [n for n, v in CANARIES.items() if not any(v in s for s in secrets)]
    assert not missing, f"config.secrets() does not know these secret fields: {missing}"
    canaries = {**CANARIES, "clitoken": token.split("_", 2)[2], "password": f"cnrypassword{RUN}",
                "wrongtoken": f"cnrywrongtoken{RUN}"}

    # -- the collector, logging at DEBUG the way `hulk-ops collect` configures it ----------------------------
    logs.configure("DEBUG", secrets=config.secrets())
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(run_collector(config, metrics_port=port, stop=stop))
    store = redis.Redis.from_url(config.store.redis_url)
    try:  # every target probed at least once (each fails: its error message is what is checked for canaries)
        assert await await_for(lambda: store.hlen(Keys(config.store.prefix).latest) >= len(config.targets), 30)
    finally:
        store.close()
    metrics_text = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
    stop.set()
    await asyncio.wait_for(task, 15)
    found: dict[str, list[str]] = {"metrics": leaks(metrics_text, canaries)}

    # -- failing actions (the echo server answers every RunPod and Kubernetes call with the key in it) --------
    guard = GuardedAction(config)
    results = []
    for request in (LaunchGpuPod(target="gpu", gpu_type="NVIDIA A40", image="img:1", max_hours=1),
                    ScaleDeployment(target="k8s", namespace="shop", deployment="web", replicas=2)):
        results.append(await guard.dry_run(ADMIN, request))
        results.append(await guard.submit(ADMIN, request, confirm=request.object_name))
    assert all(r.status in ("refused", "failed") for r in results), [r.status for r in results]
    found["action results"] = leaks("\n".join(r.model_dump_json() for r in results), canaries)
    cli_args = ["action", "launch-gpu", "--config", str(path), "--target", "gpu", "--gpu-type", "NVIDIA A40",
                "--image", "img:1", "--max-hours", "1", "--confirm", "gpu", "--json"]
    for cli_token in (token, f"hko_{token_id}_{canaries['wrongtoken']}", canaries["wrongtoken"]):
        monkeypatch.setenv("HULK_OPS_TOKEN", cli_token)
        code = await asyncio.to_thread(cli.main, cli_args)
        assert code == 1  # refused or failed, printed (and searched with the logs below)
    monkeypatch.delenv("HULK_OPS_TOKEN")
    records = await guard.history()
    assert records
    found["audit rows"] = leaks("\n".join(repr(r.__dict__) for r in records), canaries)

    # -- exception messages -----------------------------------------------------------------------------------
    messages = []
    for bad in (f"targets: [{{name: q, kind: qdrant, url: 'ftp://u:{CANARIES['qdrantkey']}@h'}}]",
                f"targets: [{{name: n, kind: neo4j, url: 'bolt://u:{CANARIES['neo4jpw']}@h:7687'}}]",
                f"targets: [{{name: r, kind: runpod, api_key: k, url: 'ftp://x:{CANARIES['runpodkey']}@h'}}]",
                f"audit: {{url: 'postgresql://u:{CANARIES['auditpw']}@h/db', colour: 1}}"):
        with pytest.raises(ConfigError) as info:
            parse_config(bad, "bad.yaml")
        messages.append(str(info.value))
    found["config errors"] = leaks("\n".join(messages), canaries)

    # -- the store, the results, the logs, the spans --------------------------------------------------------
    dump = store_dump(store_redis_url, store_prefix)
    assert Keys(store_prefix).latest.encode().decode() in dump
    found["redis store"] = leaks(dump, canaries)
    latest = redis.Redis.from_url(store_redis_url).hgetall(Keys(store_prefix).latest)
    assert len(latest) == len(config.targets)
    found["probe results"] = leaks(repr(latest), canaries)
    errors = {k.decode(): json.loads(v)["error"] for k, v in latest.items()}
    assert all(errors.values()), errors  # every target really failed and said why
    span_text = "\n".join(f"{s.name} {dict(s.attributes or {})!r} {s.status.description!r} "
                          f"{[(e.name, dict(e.attributes or {})) for e in s.events]!r}"
                          for s in spans.get_finished_spans())
    assert span_text
    found["spans"] = leaks(span_text, canaries)

    # -- every dashboard page ---------------------------------------------------------------------------------
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    import streamlit as st

    st.cache_resource.clear()
    page_text = []
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = ADMIN
    at.run()
    registered = {info.get("url_pathname") or "overview": h for h, info in at._registered_pages.items()}
    assert set(PAGES) - {"actions", "audit", "silences"} <= set(registered), registered  # every page is reachable
    for url_path, page_hash in registered.items():
        at._page_hash = page_hash
        at.run()
        assert not at.exception, (url_path, [e.value for e in at.exception])
        page_text.append(f"== {url_path}\n" + "\n".join(element_dump(at._tree)))
    st.cache_resource.clear()
    rendered = "\n".join(page_text)
    assert "cache2" in rendered
    found["dashboard pages"] = leaks(rendered, canaries)

    out, err = capfd.readouterr()
    assert "probe" in out + err or "collector" in out + err  # the log really was captured
    found["logs"] = leaks(out + err, canaries)

    assert {where: names for where, names in found.items() if names} == {}
