"""`/v1/metrics`: the agent's telemetry as Nomad's JSON, or Prometheus text with `?format=prometheus`."""

# Prometheus text comes from prometheus-client's own exposition code when that package is installed, and from
# the small hand-written writer below (text format 0.0.4: `# TYPE` lines, then samples) when it is not.

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from .query import AGENT, bad_request, json_response

routes = web.RouteTableDef()

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def metric_name(name: str) -> str:
    """go-metrics' Prometheus sink flattens "nomad.raft.apply" to "nomad_raft_apply"."""
    flat = _INVALID.sub("_", name)
    return flat if not flat[:1].isdigit() else "_" + flat


def _labels(metric: dict[str, Any]) -> dict[str, str]:
    labels = metric.get("Labels") or {}
    if isinstance(labels, list):  # Nomad's JSON lists them as [{"Name", "Value"}]
        return {metric_name(str(item.get("Name", ""))): str(item.get("Value", "")) for item in labels}
    return {metric_name(str(k)): str(v) for k, v in labels.items()}


Sample = tuple[str, dict[str, str], float]  # (suffix of the sample name, labels, value)


def _families(data: dict[str, Any]) -> dict[str, tuple[str, list[list[Sample]]]]:
    """name -> (type, one list of samples per labelled series) for every metric of the JSON form."""
    families: dict[str, tuple[str, list[list[Sample]]]] = {}

    def add(name: str, kind: str, series: list[Sample]) -> None:
        families.setdefault(metric_name(name), (kind, []))[1].append(series)

    for gauge in data.get("Gauges") or ():
        add(gauge["Name"], "gauge", [("", _labels(gauge), float(gauge.get("Value", 0)))])
    for counter in data.get("Counters") or ():
        total = counter.get("Sum", counter.get("Count", 0))
        add(counter["Name"], "counter", [("_total", _labels(counter), float(total))])
    for sample in data.get("Samples") or ():
        labels = _labels(sample)
        add(sample["Name"], "summary", [("_sum", labels, float(sample.get("Sum", 0))),
                                        ("_count", labels, float(sample.get("Count", 0)))])
    return families


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if value.is_integer() else repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def handwritten_exposition(data: dict[str, Any]) -> str:
    """The Prometheus text format written by hand (used when prometheus-client is not installed)."""
    lines: list[str] = []
    for name, (kind, all_series) in _families(data).items():
        lines.append(f"# TYPE {name} {kind}")
        for series in all_series:
            for suffix, labels, value in series:
                label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
                lines.append(f"{name}{suffix}{{{label_text}}} {_value(value)}" if label_text
                             else f"{name}{suffix} {_value(value)}")
    return "\n".join(lines) + "\n" if lines else ""


def client_exposition(data: dict[str, Any]) -> str | None:
    """The same through prometheus-client's exposition code; None when the package is not installed."""
    try:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
    except ImportError:
        return None
    families = _families(data)

    class _Snapshot:
        def collect(self) -> Iterable[Any]:
            for name, (kind, all_series) in families.items():
                labels = sorted({k for series in all_series for k in series[0][1]})
                make = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily}.get(kind, SummaryMetricFamily)
                family = make(name, name, labels=labels)
                for series in all_series:
                    values = [series[0][1].get(k, "") for k in labels]
                    if kind == "summary":
                        family.add_metric(values, count_value=series[1][2], sum_value=series[0][2])
                    else:
                        family.add_metric(values, series[0][2])
                yield family

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot())  # type: ignore[arg-type]
    return generate_latest(registry).decode()


@routes.get("/v1/metrics")
async def metrics(request: web.Request) -> web.Response:
    data = request.app[AGENT].metrics()
    fmt = request.query.get("format", "")
    if fmt == "prometheus":
        text = client_exposition(data)
        if text is None:
            text = handwritten_exposition(data)
        return web.Response(text=text, headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})
    if fmt:
        raise bad_request(f"unsupported metrics format: {fmt!r}")
    return json_response(request, data)
