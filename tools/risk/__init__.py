"""Desk analytics: risk metrics on the desk's equity series, exposure and limits read from the control plane,
position sizing, hedging that trades through the risk engine, recorded metric series, alerts and causal
regime detection. A typed library that reads the desk engine and knows nothing of doors; `tools.py` exposes
it as tools. README.md in this folder states the rules.
"""
