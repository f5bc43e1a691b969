"""The web dashboard at `/ui`: server-rendered pages over the same registry, live over the event bus."""
