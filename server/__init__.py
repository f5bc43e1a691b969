"""The registry and every door: MCP (stdio, Streamable HTTP), the HTTP app, derived REST, auth, metrics, CLI.

Layering, one way only (checked by the import-linter contracts in pyproject.toml, `make lint`):

    compat_http/              route tables of the legacy REST APIs: data (rows), importing server.rest_rows
    tools/<domain>/tools.py   tool declarations (import server.registry, server.errors, schemas)
    tools/<domain>/*.py       pure engines: numpy/pyarrow, no door, no SDK, no FastAPI
        |   found by discovery (`discover_tools`, `discover_profiles`); nothing in server/ imports them
    server/        registry.py (ToolSet, ToolRegistry, ToolEntry), context.py (CallContext, Services),
                   errors.py; the doors: mcp_binding.py + mcp_http.py (MCP), app.py + http_front.py
                   (HTTP), rest_rows.py + rest_derive.py (REST routes derived from route tables),
                   cli.py (shell); auth.py, metrics.py, logs.py, settings.py, state.py, paths.py
        |
    schemas/       shared contracts (SimulationManifest, canonical events); imports nothing of ours

Adding a capability is adding a module, never editing a door.
"""
