"""Synthetic market generation: the manifest, presets, the generator engine and its tools."""
