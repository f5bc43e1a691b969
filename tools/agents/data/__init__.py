"""Minute bars for the challenges: where they come from (a `MarketDataSource`) and where they are kept (`DataCache`)."""
