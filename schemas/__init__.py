"""Data contracts shared across doors: pydantic models and the JSON Schema files generated from them."""
