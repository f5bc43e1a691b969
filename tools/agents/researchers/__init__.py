"""Who proposes the next strategy: `BuiltinResearcher` (default, deterministic, no key) or `AnthropicResearcher`."""
