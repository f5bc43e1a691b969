"""Perpetual funding simulation per venue."""
