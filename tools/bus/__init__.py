"""The in-process event bus: typed events published once, delivered to bounded per-subscriber queues."""
