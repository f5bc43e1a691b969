"""Signals and the strategy loop: generators on the desk's market, signals with TTLs stored and published, a loop
on the desk clock that combines them, sizes through the analytics' sizing, trades through the control plane's
gate and logs every decision, strategy profiles, halt/resume on the control plane's latch, and signal,
performance and system metrics. A typed library that knows nothing of doors; `tools.py` exposes it."""
