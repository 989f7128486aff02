"""Kubernetes discovery: annotated Services become targets (the `prometheus.io/scrape` convention).

Annotations on a Service (only `hulk-ops.io/kind` is required):

    hulk-ops.io/kind         the target's kind (redis, postgres, nats, qdrant, neo4j, prometheus, http, tcp, ...)
    hulk-ops.io/port         a port number or the name of one of the Service's ports (default: its first port)
    hulk-ops.io/path         appended to the URL (/0 a Redis db, /app a PostgreSQL database, /healthz)
    hulk-ops.io/scheme       the URL scheme (default per kind: redis, postgresql, nats, http, bolt, tcp, https)
    hulk-ops.io/depends-on   target names, comma-separated
    hulk-ops.io/labels       k=v pairs, comma-separated
    hulk-ops.io/interval     probe interval in seconds (default: discovery.kubernetes.interval_s, else the kind's)
    hulk-ops.io/name         the target's name (default: <service>.<namespace>)
    hulk-ops.io/secret       a Secret in the Service's namespace: each key sets the kind's field of that name
                             (password, token, api_key, url, ...); `username`/`password` go into the URL
                             when the kind has no such field

The host is the Service's cluster IP (its DNS name `<service>.<namespace>.svc` when headless). Discovered
targets merge with the static ones (a static target wins a name clash, which is logged once); the merged set
goes through the same path as a config reload (`hulk_ops/entrypoints/reload.py`), so a Service that disappears
ends its target (its history stays in the store) and, with sharding, every replica sees the same names and
each target has one owner. A Service whose annotations do not make a valid target is skipped and logged; a
failed listing keeps the targets discovered before it. The discovered set is published to the store
(`P discovered`, no secrets) so the dashboard shows those targets and their origin.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from hulk_ops.core import discovered
from hulk_ops.core.config import Config, TargetSettings, _format
from hulk_ops.core.discovery_config import KubernetesDiscoverySettings

if TYPE_CHECKING:
    from kubernetes import client

    from hulk_ops.collectors.collector import Collector

log = structlog.get_logger("hulk_ops.discovery")
PREFIX = "hulk-ops.io/"
NOT_FROM_SECRETS = frozenset({"name", "kind", "origin", "depends_on", "labels", "rules"})


def target_from_service(svc: Any, secret: Callable[[str, str], dict[str, str] | None],
                        settings: KubernetesDiscoverySettings) -> TargetSettings | None:
    """The target an annotated Service describes; None when it is not annotated. Raises ValueError with a
    message naming the Service when the annotations (or its Secret) do not make a valid target."""
    from hulk_ops.probes import registry

    meta = svc.metadata
    notes: dict[str, str] = dict(meta.annotations or {})
    kind = notes.get(PREFIX + "kind")
    if not kind:
        return None
    where = f"service {meta.namespace}/{meta.name}"
    try:
        model = registry.settings_model(kind)
    except registry.KindError as exc:
        raise ValueError(f"{where}: {PREFIX}kind: {exc}") from None
    ports = list(svc.spec.ports or [])
    wanted = notes.get(PREFIX + "port")
    if wanted is None:
        if not ports:
            raise ValueError(f"{where}: no ports and no {PREFIX}port annotation")
        port = ports[0].port
    elif wanted.isdigit():
        port = int(wanted)
    else:
        port = next((p.port for p in ports if p.name == wanted), None)
        if port is None:
            raise ValueError(f"{where}: {PREFIX}port: no port named {wanted!r}")
    ip = svc.spec.cluster_ip
    host = ip if ip and ip != "None" else f"{meta.name}.{meta.namespace}.svc"
    scheme = notes.get(PREFIX + "scheme") or registry.url_scheme(kind)
    if not scheme:
        raise ValueError(f"{where}: kind {kind!r} has no usual URL scheme: annotate {PREFIX}scheme")
    raw: dict[str, Any] = {
        "name": notes.get(PREFIX + "name") or f"{meta.name}.{meta.namespace}",
        "kind": kind,
        "origin": f"kubernetes: {meta.namespace}/{meta.name}",
        "labels": _pairs(notes.get(PREFIX + "labels", ""), where),
        "depends_on": [d.strip() for d in notes.get(PREFIX + "depends-on", "").split(",") if d.strip()],
    }
    interval = notes.get(PREFIX + "interval")
    if interval is not None:
        raw["interval_s"] = _number(interval, where, "interval")
    elif settings.interval_s is not None:
        raw["interval_s"] = settings.interval_s
    userinfo = ""
    secret_name = notes.get(PREFIX + "secret")
    if secret_name:
        data = secret(meta.namespace, secret_name)
        if data is None:
            raise ValueError(f"{where}: {PREFIX}secret: no Secret {meta.namespace}/{secret_name}")
        fields = set(model.model_fields) - NOT_FROM_SECRETS
        user, password = data.get("username"), data.get("password")
        for key, value in data.items():
            if key in fields:
                raw[key] = value
            elif key not in ("username", "password"):
                log.warning("discovery_secret_key_unused", service=f"{meta.namespace}/{meta.name}",
                            secret=secret_name, key=key, kind=kind)
        if "password" not in fields and password is not None:
            userinfo = f"{_quote(user or '')}:{_quote(password)}@"
        elif "username" not in fields and user is not None:
            userinfo = f"{_quote(user)}@"
    raw.setdefault("url", f"{scheme}://{userinfo}{host}:{port}{notes.get(PREFIX + 'path', '')}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(_format(exc, where, prefix=())) from None


class KubernetesDiscovery:
    """Lists the Services (and reads the Secrets they name) with the official client; blocking: run in a thread."""

    def __init__(self, settings: KubernetesDiscoverySettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self._api: client.ApiClient | None = None

    def api(self) -> client.ApiClient:
        if self._api is None:
            from hulk_ops.probes.kubernetes import Settings, build_api_client

            if self.settings.target:
                source = self.config.target(self.settings.target)
            else:
                source = Settings(name="discovery", kind="kubernetes", in_cluster=True)
            self._api = build_api_client(source)  # type: ignore[arg-type]
        return self._api

    def services(self) -> list[Any]:
        from kubernetes import client

        core = client.CoreV1Api(self.api())
        if not self.settings.namespaces:
            return list(core.list_service_for_all_namespaces(_request_timeout=10).items)
        out: list[Any] = []
        for ns in self.settings.namespaces:
            out.extend(core.list_namespaced_service(ns, _request_timeout=10).items)
        return out

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            found = client.CoreV1Api(self.api()).read_namespaced_secret(name, namespace, _request_timeout=10)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (found.data or {}).items()}

    def discover(self) -> tuple[list[TargetSettings], list[str]]:
        """(targets, problems) from one listing; raises when the listing itself fails."""
        targets: list[TargetSettings] = []
        problems: list[str] = []
        cache: dict[tuple[str, str], dict[str, str] | None] = {}

        def secret(ns: str, name: str) -> dict[str, str] | None:
            if (ns, name) not in cache:
                cache[(ns, name)] = self.secret(ns, name)
            return cache[(ns, name)]

        seen: set[str] = set()
        for svc in self.services():
            try:
                target = target_from_service(svc, secret, self.settings)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if target is None:
                continue
            if target.name in seen:
                problems.append(f"{target.origin}: name {target.name!r} is already used by another Service")
                continue
            seen.add(target.name)
            targets.append(target)
        return targets, problems

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None


async def run(collector: Collector, stop: asyncio.Event, apply: Callable[[Collector], dict[str, list[str]]]) -> None:
    """Every refresh_s: list, merge with the static targets, `apply` when the set changed, publish it."""
    settings = collector.config.discovery.kubernetes
    if settings is None:
        return
    discovery = KubernetesDiscovery(settings, collector.static_config or collector.config)
    logged: set[str] = set()
    try:
        while not stop.is_set():
            try:
                targets, problems = await asyncio.to_thread(discovery.discover)
            except Exception as exc:  # the API is down or refuses: keep what was discovered before
                log.warning("discovery_failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
            else:
                for problem in problems:
                    if problem not in logged:
                        log.warning("discovery_skipped", problem=problem)
                logged = logged & set(problems) | set(problems)
                if targets != collector.discovered:
                    collector.discovered = targets
                    outcome = apply(collector)
                    log.info("discovery_applied", discovered=len(targets), added=outcome["added"],
                             removed=outcome["removed"], changed=outcome["changed"])
                await _publish(collector, targets)
            try:
                async with asyncio.timeout(settings.refresh_s):
                    await stop.wait()
            except TimeoutError:
                pass
    finally:  # closing joins the client's pool (a listing may be in flight): not waited for
        asyncio.get_running_loop().run_in_executor(None, discovery.close)


async def _publish(collector: Collector, targets: Sequence[TargetSettings]) -> None:
    redis = getattr(collector.store, "redis", None)
    if redis is None:
        return
    from hulk_ops.collectors.codec import Keys

    try:
        async with asyncio.timeout(1.0):
            await redis.set(Keys(collector.config.store.prefix).discovered, discovered.public(targets))
    except Exception as exc:  # the writer reports store outages; the next refresh publishes again
        log.debug("discovery_publish_failed", error=str(exc))


def _pairs(text: str, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{where}: {PREFIX}labels: {part!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def _number(text: str, where: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: {PREFIX}{what}: {text!r} is not a number") from None


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
