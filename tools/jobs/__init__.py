"""Jobs: long work that outlives the request that started it (generation now; research agents, prefetch next)."""
