"""The Helm chart, rendered by Helm's own Go SDK (helm-python-sdk) and checked against the Kubernetes schemas.

No cluster: what is tested is what `helm template` produces: every manifest valid for the
supported Kubernetes versions (kubernetes-validate, strict), the RBAC exactly what the code's API
calls need (hulk_ops/probes/k8s_access.py), probes, resources, PDBs, non-root, and a config the
collector accepts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from hulk_ops.core.config import parse_config
from hulk_ops.probes import k8s_access

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy/helm/hulk-ops"
K8S_VERSIONS = ("1.30.0", "1.37.0")
TARGETS = [{"name": "cache", "kind": "redis", "url": "redis://redis:6379/0"},
           {"name": "db", "kind": "postgres", "url": "postgresql://hulk:${PG_PASSWORD}@pg:5432/hulk"}]


def render(values: dict | None = None, namespace: str = "ops") -> list[dict]:
    values = {"config": {"store": {"redis_url": "redis://redis:6379/0"}, "targets": TARGETS},
              "secretEnv": {"PG_PASSWORD": "not-a-real-one"}, **(values or {})}
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values, name="hulk", namespace=namespace)
    docs = []
    for path, text in files.items():
        if path.endswith(".yaml"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str, name_part: str) -> dict:
    found = [d for d in by_kind(docs, kind) if name_part in d["metadata"]["name"]]
    assert len(found) == 1, f"{kind} *{name_part}*: {[d['metadata']['name'] for d in found]}"
    return found[0]


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return render()


def test_helm_lint_finds_no_errors():
    result = helm.lint(str(CHART))
    assert not result["errors"]
    assert all(m["severity"] <= 1 for m in result["messages"]), result["messages"]  # info only


@pytest.mark.parametrize("values", [{}, {"rbac": {"actions": {"namespaces": ["ml", "web"]}}},
                                    {"collector": {"replicas": 1}, "dashboard": {"replicas": 1}}],
                         ids=["default", "namespaced-actions", "single-replicas"])
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(values, version):
    docs = render(values)
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap", "Secret", "ServiceAccount",
                                          "ClusterRole", "ClusterRoleBinding", "PodDisruptionBudget"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_config_map_holds_a_config_the_collector_accepts_with_sharding_on(docs):
    text = one(docs, "ConfigMap", "config")["data"]["config.yaml"]
    config = parse_config(text, "configmap", environ={"PG_PASSWORD": "x"})
    assert [t.name for t in config.targets] == ["cache", "db"]
    assert config.collector.sharding.enabled  # 2 collector replicas share the targets
    single = parse_config(one(render({"collector": {"replicas": 1}}), "ConfigMap", "config")["data"]["config.yaml"],
                          "configmap", environ={"PG_PASSWORD": "x"})
    assert not single.collector.sharding.enabled


def test_collector_deployment_runs_collect_non_root_with_probes_and_resources(docs):
    deploy = one(docs, "Deployment", "collector")
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:3] == ["collect", "--config", "/etc/hulk-ops/config.yaml"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"  # fails when the event loop is stuck
    assert container["readinessProbe"]["httpGet"]["path"] == "/metrics"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    env = {e["name"]: e for e in container["env"]}
    assert env["HULK_OPS_REPLICA"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert pod["serviceAccountName"].endswith("-collector")
    assert one(render({"collector": {"replicas": 5}}), "Deployment", "collector")["spec"]["replicas"] == 5


def test_dashboard_deployment_service_and_shared_cookie_secret(docs):
    deploy = one(docs, "Deployment", "dashboard")
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:3] == ["dashboard", "--config", "/etc/hulk-ops/config.yaml"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/_stcore/health"
    startup = container["startupProbe"]  # the warm-up before listening is capped at 30 s
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
    assert pod["serviceAccountName"].endswith("-actions")
    cookie = next(e for e in container["env"] if e["name"] == "STREAMLIT_SERVER_COOKIE_SECRET")
    secret = one(docs, "Secret", "dashboard")
    assert cookie["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert len(secret["stringData"]["cookie-secret"]) >= 32
    service = one(docs, "Service", "dashboard")
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_pod_disruption_budgets_select_their_deployments(docs):
    for component in ("collector", "dashboard"):
        pdb = one(docs, "PodDisruptionBudget", component)
        deploy = one(docs, "Deployment", component)
        assert pdb["spec"]["selector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]
        assert pdb["spec"]["maxUnavailable"] == 1


def test_secret_values_stay_out_of_the_config_map(docs):
    assert "not-a-real-one" not in yaml.safe_dump(by_kind(docs, "ConfigMap"))
    assert one(docs, "Secret", "env")["stringData"]["PG_PASSWORD"] == "not-a-real-one"


# -- RBAC: exactly what the code's Kubernetes calls need -------------------------------------------------

def granted(docs: list[dict], service_account: str, named: dict | None = None) -> set[k8s_access.Rule]:
    """Every (group, resource, verb) bound to a service account, through (Cluster)RoleBindings; rules limited to
    resourceNames (only secrets may be) go into `named` (resource -> names) as well."""
    roles = {(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")): d
             for d in docs if d["kind"] in ("Role", "ClusterRole")}
    out: set[k8s_access.Rule] = set()
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s["kind"] == "ServiceAccount" and s["name"] == service_account for s in binding["subjects"]):
            continue
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], ref["name"], namespace)]
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
            assert not rule.get("nonResourceURLs")
            if rule.get("resourceNames"):
                assert rule["resources"] == ["secrets"] and rule["verbs"] == ["get"], rule
                if named is not None:
                    named.setdefault("secrets", []).extend(rule["resourceNames"])
            out |= {k8s_access.Rule(g, r, v) for g in rule["apiGroups"] for r in rule["resources"]
                    for v in rule["verbs"]}
    return out


def sa_of(docs: list[dict], component: str) -> str:
    return one(docs, "Deployment", component)["spec"]["template"]["spec"]["serviceAccountName"]


@pytest.mark.parametrize("values", [{}, {"rbac": {"actions": {"namespaces": ["ml", "web"]}}}],
                         ids=["cluster-wide", "namespaced-actions"])
def test_rbac_grants_exactly_what_the_code_calls(values):
    docs = render(values)
    secret_get = k8s_access.Rule("", "secrets", "get")  # discovery's Secrets: granted by name only (below)
    assert granted(docs, sa_of(docs, "collector")) == \
        k8s_access.required_rules(k8s_access.COLLECTOR_CALLS) - {secret_get}
    assert granted(docs, sa_of(docs, "dashboard")) == k8s_access.required_rules(k8s_access.ACTIONS_CALLS)
    assert k8s_access.required_rules(k8s_access.ACTIONS_CALLS) == {
        k8s_access.Rule("apps", "deployments/scale", "get"), k8s_access.Rule("apps", "deployments/scale", "patch"),
        k8s_access.Rule("apps", "deployments", "get"),  # the pod template prices a change
        k8s_access.Rule("apps", "deployments", "patch")}  # rollout restart: the template's restartedAt annotation


def test_discovery_reads_services_and_only_the_named_secrets():
    assert k8s_access.Rule("", "services", "list") in k8s_access.required_rules(k8s_access.COLLECTOR_CALLS)
    docs = render({"rbac": {"discovery": {"secretNames": ["cache-auth", "db-auth"]}}})
    named: dict = {}
    rules = granted(docs, sa_of(docs, "collector"), named)
    assert rules == k8s_access.required_rules(k8s_access.COLLECTOR_CALLS)
    assert named == {"secrets": ["cache-auth", "db-auth"]}
    assert not [r for r in rules if r.verb in ("watch", "create", "update", "patch", "delete")]


def test_namespaced_actions_are_roles_in_those_namespaces_only():
    docs = render({"rbac": {"actions": {"namespaces": ["ml", "web"]}}})
    roles = [d for d in by_kind(docs, "Role") if d["metadata"]["name"].endswith("-actions")]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["ml", "web"]
    assert not [d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"].endswith("-actions")]


def test_actions_off_means_no_scale_permission_and_no_token():
    docs = render({"rbac": {"actions": {"enabled": False}}})
    assert granted(docs, sa_of(docs, "dashboard")) == set()
    assert one(docs, "Deployment", "dashboard")["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def kubernetes_calls_in(folder: Path) -> set[str]:
    """`ApiClass.method` for every call in the folder's modules to a method of the client's API classes."""
    methods = k8s_access.api_methods()
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        if "kubernetes" not in source:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and node.attr in methods:
                found.add(methods[node.attr])
    return found


@pytest.mark.parametrize(("folders", "listed"), [
    (("hulk_ops/probes", "hulk_ops/collectors"), k8s_access.COLLECTOR_CALLS),
    (("hulk_ops/actions",), k8s_access.ACTIONS_CALLS),
], ids=["collector", "actions"])
def test_code_calls_only_listed_kubernetes_api_methods(folders, listed):
    used: set[str] = set()
    for folder in folders:
        used |= kubernetes_calls_in(ROOT / folder)
    assert used <= listed, f"calls missing from k8s_access.py (no RBAC for them): {sorted(used - listed)}"
    if not used:
        pytest.skip(f"no Kubernetes client code under {folders} in this tree yet")
    # and nothing granted that the code does not use
    assert k8s_access.required_rules(frozenset(used)) == k8s_access.required_rules(listed)


def test_rules_are_derived_from_the_clients_own_routes():
    assert k8s_access.http_route("CoreV1Api.list_node") == ("GET", "/api/v1/nodes")
    assert k8s_access.rule_for("AppsV1Api.patch_namespaced_deployment_scale") == \
        k8s_access.Rule("apps", "deployments/scale", "patch")
    assert k8s_access.rule_for("CoreV1Api.list_namespaced_event") == k8s_access.Rule("", "events", "list")
    assert k8s_access.rule_for("VersionApi.get_code") is None  # /version: readable by every client


# -- OIDC secrets and the optional API -------------------------------------------------------------------

OIDC_TOML = """[auth]
redirect_uri = "https://ops.example/oauth2callback"
cookie_secret = "a-cookie-secret-of-at-least-32-characters"
client_id = "hulk-ops"
client_secret = "oidc-client-secret-canary"
server_metadata_url = "https://idp.example/.well-known/openid-configuration"
"""


def oidc_values(**oidc) -> dict:
    return {"config": {"store": {"redis_url": "redis://redis:6379/0"}, "targets": TARGETS,
                       "auth": {"oidc": {"roles_claim": "groups"}}},
            "dashboard": {"oidc": oidc}}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_oidc_secrets_toml_is_mounted_where_streamlit_reads_it(version):
    import tomllib

    from hulk_ops.dashboard.launch import _streamlit_files

    for oidc, secret_name in (({"existingSecret": "hulk-oidc", "key": "oidc.toml"}, "hulk-oidc"),
                              ({"secretsToml": OIDC_TOML}, "hulk-hulk-ops-oidc")):
        docs = render(oidc_values(**oidc))
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
        pod = one(docs, "Deployment", "dashboard")["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        volume = next(v for v in pod["volumes"] if v["name"] == "oidc")
        assert volume["secret"]["secretName"] == secret_name
        assert volume["secret"]["items"] == [{"key": oidc.get("key", "secrets.toml"), "path": "secrets.toml"}]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "oidc")
        home = next(e["value"] for e in container["env"] if e["name"] == "HOME")
        assert mount["readOnly"] and mount["subPath"] == "secrets.toml"
        assert Path(mount["mountPath"]) in _streamlit_files("secrets.toml", {"HOME": home})  # what Streamlit reads
        tmp = next(m for m in container["volumeMounts"] if m["name"] == "tmp")
        assert mount["mountPath"].startswith(tmp["mountPath"] + "/")  # the rest of ~/.streamlit stays writable
    created = one(docs, "Secret", "oidc")
    assert tomllib.loads(created["stringData"]["secrets.toml"])["auth"]["client_id"] == "hulk-ops"
    assert "oidc-client-secret-canary" not in yaml.safe_dump(by_kind(docs, "ConfigMap") + by_kind(docs, "Deployment"))
    assert not [v for v in one(render(), "Deployment", "dashboard")["spec"]["template"]["spec"]["volumes"]
                if v["name"] == "oidc"]


def test_oidc_configured_without_its_secret_refuses_to_render():
    with pytest.raises(Exception, match=r"dashboard\.oidc\.existingSecret"):
        render(oidc_values())


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_api_is_optional_and_runs_the_real_api_command(version):
    from hulk_ops.entrypoints.cli import build_parser

    assert not [d for d in render() if "-api" in d["metadata"]["name"]]
    docs = render({"api": {"enabled": True, "port": 8600}})
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    deploy = one(docs, "Deployment", "-api")
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert (args.command, args.config, args.host, args.port) == ("api", "/etc/hulk-ops/config.yaml", "0.0.0.0", 8600)
    assert container["ports"][0]["containerPort"] == 8600
    assert container["livenessProbe"]["httpGet"]["path"] == container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["automountServiceAccountToken"] is False and container["securityContext"]["readOnlyRootFilesystem"]
    assert container["envFrom"][0]["secretRef"]["name"] == one(docs, "Secret", "env")["metadata"]["name"]
    config_map = one(docs, "ConfigMap", "config")["metadata"]["name"]
    assert next(v for v in pod["volumes"] if v["name"] == "config")["configMap"]["name"] == config_map
    service = one(docs, "Service", "-api")
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]


# -- values schema, ServiceMonitor, Ingress ----------------------------------------------------------------

def test_values_schema_accepts_the_defaults_and_helm_refuses_a_misspelt_value():
    import json

    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)
    for wrong in ({"dashbaord": {"replicas": 1}}, {"collector": {"replicas": "two"}},
                  {"image": {"pullPolicy": "Sometimes"}}, {"dashboard": {"cookieSecret": "short"}}):
        with pytest.raises(Exception, match="values don't meet the specifications of the schema"):
            render(wrong)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_service_monitor_selects_the_collector_metrics_service(version):
    docs = render({"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}, "interval": "15s"}})
    monitor = one(docs, "ServiceMonitor", "collector")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["metadata"]["labels"]["release"] == "kps"
    selected = [s for s in by_kind(docs, "Service")
                if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in selected] == ["hulk-hulk-ops-collector-metrics"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]} and endpoint["interval"] == "15s"
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == ["ops"]
    for doc in docs:
        if doc["kind"] != "ServiceMonitor":  # a CRD: not in the Kubernetes schemas
            kubernetes_validate.validate(doc, version, strict=True)
    assert not by_kind(render(), "ServiceMonitor")


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_ingress_routes_the_dashboard_and_the_api_to_their_services(version):
    docs = render({"api": {"enabled": True}, "ingress": {
        "enabled": True, "host": "ops.example.com", "className": "nginx",
        "tls": [{"hosts": ["ops.example.com"], "secretName": "ops-tls"}]}})
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    ingress = one(docs, "Ingress", "hulk")
    (rule,) = ingress["spec"]["rules"]
    services = {s["metadata"]["name"]: {p["name"] for p in s["spec"]["ports"]} for s in by_kind(docs, "Service")}
    routes = {p["path"]: p["backend"]["service"] for p in rule["http"]["paths"]}
    assert set(routes) == {"/", "/api/"} and rule["host"] == "ops.example.com"
    for backend in routes.values():
        assert backend["port"]["name"] in services[backend["name"]]
    assert routes["/"]["name"].endswith("-dashboard") and routes["/api/"]["name"].endswith("-api")
    only_dashboard = one(render({"ingress": {"enabled": True, "host": "ops.example.com"}}), "Ingress", "hulk")
    assert [p["path"] for p in only_dashboard["spec"]["rules"][0]["http"]["paths"]] == ["/"]
    with pytest.raises(Exception, match=r"ingress\.host is required"):
        render({"ingress": {"enabled": True}})
