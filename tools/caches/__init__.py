"""Caches of generated and normalized events."""
