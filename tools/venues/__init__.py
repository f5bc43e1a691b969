"""Venue details from a dated data file."""
