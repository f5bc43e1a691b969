"""Normalization of raw venue feeds into canonical events."""
