"""The Dockerfile and compose.yaml, read statically (no Docker engine here): what they run must exist.

The commands they give `hulk-ops` are parsed by the real CLI parser; the compose config file
passes the real config validation (for the kinds this tree has); the image's runtime stage runs
as a non-root user with a HEALTHCHECK. tests/integration/test_deploy_entrypoints.py runs the same
commands for real.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hulk_ops.core.config import ConfigError, parse_config
from hulk_ops.entrypoints.cli import build_parser
from hulk_ops.probes import registry

ROOT = Path(__file__).resolve().parents[2]
# kinds other branches bring (issue 3); a compose target of such a kind is checked once they are merged
COMING_KINDS = {"qdrant", "neo4j", "prometheus", "kubernetes", "runpod", "http", "tcp"}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction, args in dockerfile():
        if instruction == "FROM":
            found.append([])
        if found:
            found[-1].append((instruction, args))
    return found


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec form: {args}"
    return value


def test_multi_stage_build_from_the_lock_file_with_uv():
    all_stages = stages()
    assert len(all_stages) >= 2
    build = " ".join(a for _, a in all_stages[0])
    assert "uv sync --frozen --no-dev" in build and "uv.lock" in build
    runtime = all_stages[-1]
    assert "slim" in runtime[0][1]
    copies = [a for i, a in runtime if i == "COPY"]
    assert any("--from=build" in c and "/app/.venv" in c for c in copies)
    assert not any(i == "RUN" and "uv sync" in a for i, a in runtime)  # nothing resolved in the final image


def test_runtime_runs_as_a_non_root_user_with_a_healthcheck():
    runtime = dict((i, a) for i, a in stages()[-1])
    user = runtime["USER"].split(":")[0]
    assert user not in ("root", "0") and (not user.isdigit() or int(user) > 0)
    health = runtime["HEALTHCHECK"]
    assert "--interval" in health
    command = exec_form(health[health.index("CMD") + 3:].strip())
    assert command[-2:] == ["-m", "hulk_ops.entrypoints.healthcheck"]
    assert (ROOT / "hulk_ops/entrypoints/healthcheck.py").exists()


def test_entrypoint_and_command_are_real_hulk_ops_subcommands():
    runtime = dict((i, a) for i, a in stages()[-1])
    entrypoint, command = exec_form(runtime["ENTRYPOINT"]), exec_form(runtime["CMD"])
    assert entrypoint == ["hulk-ops"]
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'hulk-ops = "hulk_ops.entrypoints.cli:main"' in pyproject
    args = build_parser().parse_args(command)  # the default role; --config comes from HULK_OPS_CONFIG
    assert args.command == "collect" and args.metrics_host == "0.0.0.0"
    assert "HULK_OPS_CONFIG=/etc/hulk-ops/config.yaml" in runtime["ENV"]
    assert build_parser().parse_args(["dashboard", "--host", "0.0.0.0"]).command == "dashboard"


def test_the_build_copies_every_package_the_wheel_ships():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    packages = json.loads(re.search(r"packages = (\[[^\]]*\])", pyproject).group(1))
    copied = {a.split()[0] for i, a in stages()[0] if i == "COPY"}
    assert set(packages) <= copied, set(packages) - copied
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert not set(packages) & set(ignored)


# -- compose.yaml -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_has_hulk_ops_and_the_real_backends(compose):
    services = compose["services"]
    images = {name: s.get("image", "") for name, s in services.items()}
    for backend, image in {"redis": "redis:", "postgres": "postgres:", "nats": "nats:", "prometheus": "prom/prometheus",
                           "qdrant": "qdrant/qdrant", "neo4j": "neo4j:"}.items():
        assert images[backend].startswith(image), (backend, images[backend])
        assert not images[backend].endswith(":latest")
    assert "--jetstream" in services["nats"]["command"]
    for role in ("collector", "dashboard"):
        assert services[role]["build"] == "." and services[role]["image"] == images["dashboard"]
    assert services["collector"]["deploy"]["replicas"] >= 2


def test_compose_commands_parse_and_mounted_files_exist(compose):
    services = compose["services"]
    for role, sub in (("collector", "collect"), ("dashboard", "dashboard"), ("api", "api")):
        command = services[role]["command"]
        assert build_parser().parse_args(command).command == sub
        assert "0.0.0.0" in command  # reachable from the other containers
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, (name, dep)
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith("./")}
    assert named <= set(compose["volumes"])


def mounts(service: dict) -> dict[str, str]:
    """container path -> host path (./...) or volume name."""
    return {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}


def test_every_hulk_ops_role_reads_the_config_setup_writes(compose):
    services = compose["services"]
    setup = services["setup"]
    assert setup["entrypoint"][0] == "python" and setup.get("restart") == "no" and not setup["depends_on"]
    script = setup["entrypoint"][1]
    assert mounts(setup)[script] == "./deploy/compose/setup.py"
    args = setup["command"]
    out, template = args[args.index("--out") + 1], args[args.index("--template") + 1]
    assert mounts(setup)[template] == "./deploy/compose/hulk-ops.yaml"
    for role in ("collector", "dashboard", "api"):
        service = services[role]
        assert service["depends_on"]["setup"] == {"condition": "service_completed_successfully"}
        assert mounts(service)[out] == mounts(setup)[out] == "hulk-config"
        assert service["environment"]["HULK_OPS_CONFIG"] == f"{out}/config.yaml"
    assert services["dashboard"]["working_dir"] == out  # where setup leaves .streamlit/config.toml
    assert "127.0.0.1:8502:8502" in services["api"]["ports"]


def test_compose_setup_generates_an_admin_an_audit_log_and_a_cookie_secret(compose, tmp_path, monkeypatch):
    from hulk_ops.actions.identity import login, principal_from_token
    from hulk_ops.core.config import load_config
    from hulk_ops.dashboard.launch import check_cookie_secret

    setup = compose["services"]["setup"]
    host = {v.split(":")[1]: str(ROOT / v.split(":")[0]) for v in setup["volumes"] if v.startswith("./")}
    out = tmp_path / "etc-hulk-ops"
    out.mkdir()
    argv = [host.get(a, a) for a in setup["command"]]
    argv[argv.index("--out") + 1] = str(out)
    env = {**os.environ, "POSTGRES_PASSWORD": "p", "NEO4J_PASSWORD": "n"}
    first = subprocess.run([sys.executable, host[setup["entrypoint"][1]], *argv], capture_output=True, text=True,
                           env=env, timeout=60)
    assert first.returncode == 0, first.stderr
    credentials = dict(line.split(": ", 1) for line in (out / "admin-credentials.txt").read_text().splitlines())
    token = credentials["API token (HULK_OPS_TOKEN, Bearer)"]
    assert credentials["password"] not in first.stdout + first.stderr and token not in first.stdout + first.stderr
    assert (out / "admin-credentials.txt").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("POSTGRES_PASSWORD", "p")
    monkeypatch.setenv("NEO4J_PASSWORD", "n")
    config = load_config(out / "config.yaml")
    assert config.audit.url and config.audit.url.startswith("postgresql://hulk:")
    assert login(config.auth, "admin", credentials["password"]).roles == ("admin",)
    assert principal_from_token(config.auth, token).name == "admin"
    monkeypatch.chdir(out)  # the dashboard's working_dir
    check_cookie_secret(config, {"HOME": str(tmp_path)})  # raises when Streamlit would sign with a random secret
    again = subprocess.run([sys.executable, host[setup["entrypoint"][1]], *argv], capture_output=True, text=True,
                           env=env, timeout=60)
    assert again.returncode == 0 and "kept as it is" in again.stdout
    assert load_config(out / "config.yaml").auth.users == config.auth.users


def test_compose_prometheus_loads_the_shipped_rules_and_grafana_is_provisioned(compose, tmp_path):
    services = compose["services"]
    prometheus = services["prometheus"]
    prom_mounts = mounts(prometheus)
    prom_config = yaml.safe_load((ROOT / prom_mounts["/etc/prometheus/prometheus.yml"]).read_text())
    patterns = prom_config["rule_files"]
    loaded = [path for path in prom_mounts if any(fnmatch.fnmatch(path, p) for p in patterns)]
    assert [prom_mounts[p] for p in loaded] == ["./deploy/prometheus/hulk-ops-rules.yml"]
    jobs = {job["job_name"]: job for job in prom_config["scrape_configs"]}
    (sd,) = jobs["hulk-ops-collector"]["dns_sd_configs"]
    assert sd["names"] == ["collector"] and sd["port"] == 9464
    assert "9464" in services["collector"]["command"]
    (api,) = jobs["hulk-ops-api"]["static_configs"]
    assert api["targets"] == ["api:8502"] and "8502" in services["api"]["command"]
    promtool = shutil.which("promtool")
    if promtool:  # Debian's prometheus package: check the config with the rules it loads, as Prometheus would
        local = {**prom_config, "rule_files": [str(ROOT / "deploy/prometheus/hulk-ops-rules.yml")]}
        path = tmp_path / "prometheus.yml"
        path.write_text(yaml.safe_dump(local))
        done = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout + done.stderr

    grafana = services["grafana"]
    assert grafana["image"].startswith("grafana/") and not grafana["image"].endswith(":latest")
    g_mounts = mounts(grafana)
    provisioning = ROOT / g_mounts["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090" and source["isDefault"]
    (provider,) = yaml.safe_load((provisioning / "dashboards/hulk-ops.yml").read_text())["providers"]
    dashboards = [path for path in g_mounts if path.startswith(provider["options"]["path"] + "/")]
    assert [g_mounts[p] for p in dashboards] == ["./deploy/grafana/hulk-ops.json"]
    dashboard = json.loads((ROOT / "deploy/grafana/hulk-ops.json").read_text())
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert variable["type"] == "datasource" and variable["query"] == source["type"]
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] in dashboards


def test_compose_config_file_is_valid_and_shards_the_collectors():
    text = (ROOT / "deploy/compose/hulk-ops.yaml").read_text(encoding="utf-8")
    env = {"POSTGRES_PASSWORD": "p", "NEO4J_PASSWORD": "n"}
    raw = yaml.safe_load(text)
    known = [t for t in raw["targets"] if t["kind"] in registry.kinds()]
    coming = {t["kind"] for t in raw["targets"]} - set(registry.kinds())
    assert coming <= COMING_KINDS
    config = parse_config(yaml.safe_dump({**raw, "targets": known}), "hulk-ops.yaml", environ=env)
    assert config.collector.sharding.enabled
    assert {t.kind for t in config.targets} >= {"redis", "postgres", "nats"}
    with pytest.raises(ConfigError, match="POSTGRES_PASSWORD"):
        parse_config(yaml.safe_dump({**raw, "targets": known}), "hulk-ops.yaml", environ={})


def test_compose_prometheus_scrapes_the_collectors():
    prom = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text(encoding="utf-8"))
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "hulk-ops-collector")
    assert job["dns_sd_configs"][0]["names"] == ["collector"] and job["dns_sd_configs"][0]["port"] == 9464
