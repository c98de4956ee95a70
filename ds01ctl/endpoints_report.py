"""`ds01ctl endpoints`: every declared endpoint, its phase and where to reach it.

Phases:
- Pending: not placed (the plan's reason), or not created yet (apply makes it);
- Starting: its container runs and its server does not list the model yet, within its
  start timeout;
- Ready: `/v1/models` lists its served name (asked with its API key);
- Degraded: it runs but is still not Ready past its start timeout;
- Failed: its container exited.

It plans (read only) to know what is pending and what runs; the only other thing it does is
one request per running endpoint, as a client would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from ds01ctl import labels as L
from ds01ctl.live.endpoints import probe, read_secret
from ds01ctl.manifests import Endpoint
from ds01ctl.model.observed import ObservedContainer
from ds01ctl.model.spec import ContainerSpec
from ds01ctl.resolve.endpoints import API_KEY_ENV, target


@dataclass(frozen=True)
class EndpointRow:
    target: str
    phase: str
    url: str | None
    model: str
    recipe: str | None
    gpus: tuple[str, ...]
    detail: str | None  # why pending, what the probe answered, how it ended

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self) | {"gpus": list(self.gpus)}


@dataclass(frozen=True)
class EndpointsReport:
    rows: tuple[EndpointRow, ...]

    def to_json(self) -> str:
        return json.dumps({"endpoints": [r.to_dict() for r in self.rows]}, indent=2) + "\n"

    def to_text(self) -> str:
        if not self.rows:
            return "no endpoints declared\n"
        lines = []
        for row in self.rows:
            _, owner, name = row.target.split("/", 2)
            lines.append(f"{owner}/{name}  {row.phase}")
            lines.append(f"  url:    {row.url + '/v1' if row.url else '-'}")
            lines.append(f"  model:  {row.model}")
            lines.append(f"  recipe: {row.recipe or '-'}")
            lines.append(f"  gpus:   {', '.join(row.gpus) or '-'}")
            if row.detail:
                lines.append(f"  {row.detail}")
        return "\n".join(lines) + "\n"


def endpoints_report(path: Path, *, now: dt.datetime | None = None) -> EndpointsReport:
    from ds01ctl.workflow import make_plan

    now = now or dt.datetime.now(dt.UTC)
    result = make_plan(path, now=now)
    pending = {p.target: p.reason for p in result.plan.pending}
    specs = {s.key: s for s in result.desired.specs}
    replacing = {a.target for a in result.plan.actions if a.kind.value in ("replace", "create")}
    rows = []
    for endpoint, _ in sorted(result.repo.of(Endpoint), key=lambda p: target(p[0])):
        assert isinstance(endpoint, Endpoint)
        key = target(endpoint)
        live = _container(result.observed.ours(), key, specs.get(key))
        rows.append(
            _row(endpoint, key, live, specs.get(key), pending.get(key), key in replacing, now)
        )
    return EndpointsReport(tuple(rows))


def _container(
    ours: tuple[ObservedContainer, ...], key: str, spec: ContainerSpec | None
) -> ObservedContainer | None:
    """Its container: the one as the spec names it, else the running one, else any."""
    found = [c for c in ours if c.key == key]
    found.sort(key=lambda c: (spec is None or c.name != spec.container_name, not c.running, c.name))
    return found[0] if found else None


def _row(
    endpoint: Endpoint,
    key: str,
    live: ObservedContainer | None,
    spec: ContainerSpec | None,
    pending: str | None,
    changes: bool,
    now: dt.datetime,
) -> EndpointRow:
    served = endpoint.spec.model.served_name or endpoint.metadata.name
    model = f"{served} ({endpoint.spec.model.id})"
    if live is None or live.config is None:
        return EndpointRow(
            key, "Pending", None, model, None, (), pending or "not created yet: apply"
        )
    labels = live.labels
    url = _url(live)
    recipe = L.get(labels, L.DS01_RECIPE)
    model = f"{L.get(labels, L.DS01_SERVED) or served} ({L.get(labels, L.DS01_MODEL) or '?'})"
    if not live.running:
        return EndpointRow(
            key, "Failed", url, model, recipe, live.gpu_ids, f"container {live.state}"
        )
    key_path = next((p for n, p, _ in spec.secret_env if n == API_KEY_ENV), None) if spec else None
    ready, said = (False, "no published port")
    if url is not None:
        path = spec.ready_path if spec else "/v1/models"
        ready, said = probe(url + path, L.get(labels, L.DS01_SERVED) or served, _key(key_path), 3)
    if ready:
        detail = "runs what the manifests no longer ask: apply replaces it" if changes else None
        return EndpointRow(key, "Ready", url, model, recipe, live.gpu_ids, detail)
    timeout = spec.start_timeout if spec else endpoint.spec.health.start_timeout
    started = live.config.created
    within = started is not None and (now - started).total_seconds() < timeout
    phase = "Starting" if within else "Degraded"
    return EndpointRow(key, phase, url, model, recipe, live.gpu_ids, f"not ready: {said}")


def _key(path: str | None) -> str | None:
    return read_secret(path) if path else None


def _url(live: ObservedContainer) -> str | None:
    assert live.config is not None
    for _, address, port in live.config.ports:
        host = "127.0.0.1" if address in ("", "0.0.0.0") else address
        return f"http://{host}:{port}"
    return None
