"""Server health and identity."""
