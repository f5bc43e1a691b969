"""Agents: the SQLite store, the iteration loop and the service that runs agents in the background."""
