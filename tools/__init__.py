"""Capability domains. Each `tools/<domain>/` holds a pure engine and one `tools.py` that declares its tools."""
