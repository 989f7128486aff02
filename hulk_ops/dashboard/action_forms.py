"""The Actions page's forms and result panels: each form returns the request dict to dry-run, or None.

Only targets the signed-in person may act on are offered (`GuardedAction.offered`); the guard
refuses anything else whatever a form sends. Streams, deployments and pods are offered from the
target's latest probe result (readmodel/choices.py), GPU types from the RunPod API; picking one fills
the typed field, which stays editable for when the list is empty or stale.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from hulk_ops.actions.model import ActionResult, Principal
from hulk_ops.core.config import TargetSettings
from hulk_ops.core.model import ProbeResult
from hulk_ops.dashboard import context
from hulk_ops.dashboard.readmodel import choices

VERB = {"purge_stream": "Purge stream", "scale": "Scale deployment", "restart": "Restart deployment",
        "launch_gpu": "Launch GPU pod", "run_job": "Run job", "endpoint_workers": "Set endpoint workers",
        "stop_pod": "Stop pod", "terminate_pod": "Terminate pod"}


def targets_for(action: str, offered: dict[str, list[str]]) -> list[TargetSettings]:
    return [t for t in context.config().targets if action in offered.get(t.name, [])]


def _target(action: str, choices: list[TargetSettings]) -> TargetSettings:
    def label(t: TargetSettings) -> str:
        env = t.labels.get("env", "")
        return f"{t.name} ({env})" if env else t.name

    return st.selectbox("Target", choices, format_func=label, key=f"{action}_target")


def purge_form(choices_: list[TargetSettings]) -> dict[str, Any] | None:
    target = _target("purge_stream", choices_)
    result = _latest(target.name)
    known = choices.streams(result)
    if known:
        _picker("Pick a stream", {s.name: s.label() for s in known}, "purge_pick", "purge_stream_name",
                target, result)
    stream = st.text_input("Stream", key="purge_stream_name")
    cols = st.columns(2)
    subject = cols[0].text_input("Only this subject (optional)", key="purge_subject")
    keep = cols[1].number_input("Keep the newest N (0: none)", min_value=0, step=1, key="purge_keep")
    if not st.button("Dry-run", key="purge_dry", type="primary", disabled=not stream):
        return None
    return {"action": "purge_stream", "target": target.name, "stream": stream, "subject": subject or None,
            "keep": int(keep) or None}


def scale_form(choices_: list[TargetSettings], offered: dict[str, list[str]] | None = None) -> dict[str, Any] | None:
    target = _target("scale", choices_)
    verbs = [a for a in ("scale", "restart") if offered is None or a in offered.get(target.name, [])]
    verb = st.radio("Action", verbs, format_func=lambda a: {"scale": "Scale", "restart": "Rolling restart"}[a],
                    horizontal=True, key="deployment_verb")
    result = _latest(target.name)
    found = choices.deployments(result, target.name, context.config().actions.scale)
    scalable = {f"{d.namespace}/{d.name}": d for d in found if d.bounds is not None}
    others = [d for d in found if d.bounds is None]
    if not scalable:
        st.caption(f"No deployment of {target.name} has replica bounds in config (actions.scale): none can be "
                   "scaled.")
        _not_scalable(others)
        return None
    key = st.selectbox("Deployment", list(scalable), key="scale_deployment", format_func=lambda k: scalable[k].label())
    entry = scalable[key]
    assert entry.bounds is not None
    _age_note(target, result)
    _not_scalable(others)
    if verb == "restart":
        st.caption("Every pod is replaced under the deployment's own rollout strategy (as kubectl rollout restart).")
        if not st.button("Dry-run", key="restart_dry", type="primary"):
            return None
        return {"action": "restart", "target": target.name, "namespace": entry.namespace, "deployment": entry.name}
    low, high, current = entry.bounds.min, entry.bounds.max, entry.desired
    start = min(max(current, low), high) if current is not None else low
    replicas = st.number_input("Replicas", min_value=low, max_value=high, value=start, step=1, key="scale_replicas",
                               help=f"now {current} (last probe)" if current is not None else None)
    if not st.button("Dry-run", key="scale_dry", type="primary"):
        return None
    return {"action": "scale", "target": target.name, "namespace": entry.namespace, "deployment": entry.name,
            "replicas": int(replicas)}


def _not_scalable(others: list[choices.Deployment]) -> None:
    """Deployments the probe saw that cannot be scaled here, shown (greyed) with the reason."""
    if others:
        st.selectbox(f"Not scalable here: {others[0].why_not}", [d.label() for d in others], disabled=True,
                     key="scale_unbounded", help="add an entry with min and max under actions.scale to scale one")


def workers_form(choices_: list[TargetSettings]) -> dict[str, Any] | None:
    """A serverless endpoint listed in `actions.endpoint_workers`, with its queue from the last probe."""
    target = _target("endpoint_workers", choices_)
    result = _latest(target.name)
    bounded = {b.endpoint: b for b in context.config().actions.endpoint_workers if b.target == target.name}
    seen = {str(e.get("id")): e for e in ((result.details or {}).get("endpoints") or []) if isinstance(e, dict)} \
        if result is not None else {}
    others = [e for e in seen if e not in bounded]
    if not bounded:
        st.caption(f"No endpoint of {target.name} has worker bounds in config (actions.endpoint_workers): none can "
                   "be changed.")
        return None

    def label(endpoint: str) -> str:
        b, health = bounded[endpoint], seen.get(endpoint) or {}
        queue = (health.get("jobs") or {}).get("inQueue")
        running = (health.get("workers") or {}).get("running")
        extra = "" if queue is None else f" · queue {queue} · running {running or 0}"
        return f"{endpoint} (workers {b.min}..{b.max}){extra}"

    endpoint = st.selectbox("Endpoint", list(bounded), format_func=label, key="workers_endpoint")
    _age_note(target, result)
    if others:
        st.selectbox("Not changeable here: no worker bounds in config (actions.endpoint_workers)", others,
                     disabled=True, key="workers_unbounded")
    b = bounded[endpoint]
    cols = st.columns(2)
    low = cols[0].number_input("Min workers", min_value=b.min, max_value=b.max, value=b.min, step=1, key="workers_min")
    high = cols[1].number_input("Max workers", min_value=b.min, max_value=b.max, value=b.max, step=1,
                                key="workers_max")
    if not st.button("Dry-run", key="workers_dry", type="primary"):
        return None
    return {"action": "endpoint_workers", "target": target.name, "endpoint": endpoint, "min_workers": int(low),
            "max_workers": int(high)}


def launch_form(choices_: list[TargetSettings]) -> dict[str, Any] | None:
    target = _target("launch_gpu", choices_)
    limits = context.config().actions.runpod
    offered = _gpu_types(target)
    if offered:
        _picker("Pick a GPU type (RunPod API, on-demand price per GPU)", {g.id: g.label() for g in offered},
                "launch_pick", "launch_gpu_type")
    cols = st.columns(3)
    gpu_type = cols[0].text_input("GPU type", key="launch_gpu_type", placeholder="NVIDIA A100 80GB PCIe")
    count = cols[1].number_input("GPUs", min_value=1, max_value=limits.max_gpu_count, step=1, key="launch_count")
    hours = cols[2].number_input("Max runtime (h)", min_value=0.25, max_value=limits.max_hours, value=1.0,
                                 step=0.25, key="launch_hours")
    image = st.text_input("Image", key="launch_image", placeholder="runpod/pytorch:2.4.0-py3.11-cuda12.4.1")
    name = st.text_input("Pod name (optional)", key="launch_name")
    st.caption(f"Budget cap per launch: {limits.budget_usd:.2f} USD (price x GPUs x max runtime)")
    if not st.button("Dry-run", key="launch_dry", type="primary", disabled=not (gpu_type and image)):
        return None
    return {"action": "launch_gpu", "target": target.name, "gpu_type": gpu_type, "count": int(count),
            "image": image, "max_hours": float(hours), "name": name or None}


def pod_form(choices_: list[TargetSettings], offered: dict[str, list[str]]) -> dict[str, Any] | None:
    target = _target("stop_pod", choices_)
    result = _latest(target.name)
    known = choices.pods(result)
    if known:
        _picker("Pick a pod", {p.id: p.label() for p in known}, "pod_pick", "pod_id", target, result)
    pod_id = st.text_input("Pod id", key="pod_id")
    verbs = [a for a in ("stop_pod", "terminate_pod") if a in offered.get(target.name, [])]
    verb = st.radio("Action", verbs, format_func=lambda a: VERB[a], horizontal=True, key="pod_verb")
    if not st.button("Dry-run", key="pod_dry", type="primary", disabled=not pod_id):
        return None
    return {"action": verb, "target": target.name, "pod_id": pod_id}


def _latest(target: str) -> ProbeResult | None:
    try:
        return context.read_model().latest([target]).get(target)  # one HMGET, not the fleet
    except Exception:  # the store being down must not hide the form: the lists are a help, typing still works
        return None


def _picker(label: str, options: dict[str, str], key: str, field: str, target: TargetSettings | None = None,
            result: ProbeResult | None = None) -> None:
    """A list whose choice fills the typed field `field` (which stays editable)."""

    def fill() -> None:
        if st.session_state.get(key):
            st.session_state[field] = st.session_state[key]

    st.selectbox(label, list(options), index=None, key=key, on_change=fill, format_func=lambda k: options.get(k, k),
                 placeholder="choose, or type below")
    if target is not None:
        _age_note(target, result)


def _age_note(target: TargetSettings, result: ProbeResult | None) -> None:
    seconds, stale = choices.age(result, target.interval_s)
    if seconds is None:
        return
    note = f"From the last probe, {seconds:,.0f} s ago"
    st.caption(note + (": stale, the list may be out of date (type the name if it is missing)" if stale else "."))


@st.cache_data(ttl=300, show_spinner=False)
def _gpu_type_answer(target: str) -> dict[str, Any]:
    """RunPod's GPU types (five minutes old at most); an empty answer when the API cannot be read."""
    from hulk_ops.actions.executors import runpod

    settings = next((t for t in context.config().targets if t.name == target), None)
    return {} if settings is None else runpod.gpu_types_answer(settings, choices.GPU_TYPES_QUERY)


def _gpu_types(target: TargetSettings) -> list[choices.GpuType]:
    return choices.gpu_types(_gpu_type_answer(target.name))


def show_preview(result: ActionResult) -> None:
    preview = result.preview
    if preview is None:
        return
    st.markdown(f"**{preview.summary}**")
    figures = [(_label(k), f"{v:,}") for k, v in preview.expected.items()
               if isinstance(v, int | float) and not isinstance(v, bool)][:3]
    if preview.cost_usd_per_hour_delta is not None:
        figures.append(("Cost change", f"{preview.cost_usd_per_hour_delta:+.4f} USD/h"))
    if preview.cost_usd_max is not None:
        figures.append(("Cost at most", f"{preview.cost_usd_max:.2f} USD"))
    for col, (label, value) in zip(st.columns(max(1, len(figures))), figures, strict=False):
        col.metric(label, value)
    if preview.blast_radius:
        st.markdown("**Blast radius**\n" + "\n".join(f"- {line}" for line in preview.blast_radius))
    with st.expander("State before and expected after"):
        st.json({"before": preview.before, "expected": preview.expected}, expanded=True)
    for warning in result.warnings:
        st.warning(warning)


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def show_result(result: ActionResult) -> None:
    if result.status in ("succeeded", "replayed"):
        st.success(f"**Done.** {result.message}", icon="✅")
        if result.after:
            with st.expander("State after"):
                st.json(result.after, expanded=True)
    elif result.status == "pending_approval":
        st.info(f"**Waiting for approval.** {result.message}", icon="⏳")
    elif result.status == "dry_run":
        show_preview(result)
    else:
        st.error(f"**{result.status.capitalize()}.** {result.message}", icon="🛑")
    for warning in result.warnings:
        st.warning(warning)
    approved = f" · approved by {result.approver}" if result.approver else ""
    st.caption(f"request {result.request_id}{approved} · audited")


def may_approve(who: Principal, requester: str) -> bool:
    return who.role == "admin" and who.name != requester
