"""Prometheus metrics: per-tool calls, errors by kind, latency, plus process metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 300.0)


logger = logging.getLogger("quantdesk.metrics")


class DomainCollector:
    """Reads a domain's plain numbers at scrape time and exposes them as Prometheus families."""

    def __init__(self, prefix: str, read: Callable[[], Mapping[str, Any]], labels: Mapping[str, str]) -> None:
        self.prefix = prefix
        self.read = read
        self.labels = labels

    def collect(self) -> Iterator[Metric]:
        try:
            values = self.read()
        except Exception:  # a failing domain must not take /metrics down with it
            logger.exception("metrics source failed", extra={"prefix": self.prefix})
            return
        for key, value in values.items():
            counter = key.endswith("_total")
            name = f"{self.prefix}_{key.removesuffix('_total') if counter else key}"
            help_text = key.replace("_", " ")
            if isinstance(value, Mapping):
                label = self.labels.get(key, "key")
                family: Metric = (CounterMetricFamily(name, help_text, labels=[label]) if counter
                                  else GaugeMetricFamily(name, help_text, labels=[label]))
                for label_value, number in value.items():
                    family.add_metric([str(label_value)], float(number))  # type: ignore[attr-defined]
                yield family
            elif isinstance(value, int | float) and not isinstance(value, bool):
                yield (CounterMetricFamily(name, help_text, value=float(value)) if counter
                       else GaugeMetricFamily(name, help_text, value=float(value)))


class Metrics:
    """One collector registry per application, so two apps in one process never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.calls = Counter("quantdesk_tool_calls", "Tool calls by tool and door", ["tool", "door"],
                             registry=self.registry)
        self.errors = Counter("quantdesk_tool_errors", "Tool calls that failed, by tool and error kind",
                              ["tool", "kind"], registry=self.registry)
        self.latency = Histogram("quantdesk_tool_latency_seconds", "Tool call latency", ["tool"],
                                 buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.active_streams = Gauge("quantdesk_active_streams", "Open SSE streams", registry=self.registry)
        self.tools_registered = Gauge("quantdesk_tools_registered", "Tools in the registry", registry=self.registry)
        # .labels() locks and hashes on every call; the children are stable, so keep them.
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def add_domain(self, prefix: str, read: Callable[[], Mapping[str, Any]], labels: Mapping[str, str]) -> None:
        self.registry.register(DomainCollector(prefix, read, labels))

    def observe_call(self, tool: str, door: str, outcome: str, seconds: float) -> None:
        children = self._children.get((tool, door))
        if children is None:
            children = self._children[(tool, door)] = (self.calls.labels(tool, door), self.latency.labels(tool))
        children[0].inc()
        children[1].observe(seconds)
        if outcome != "ok":
            self.errors.labels(tool, outcome).inc()

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
