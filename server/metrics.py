"""Prometheus metrics: per-tool calls, errors by kind, latency, plus process metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 300.0)


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
