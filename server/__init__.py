"""The registry and every door: MCP (stdio, Streamable HTTP), the HTTP app, auth, metrics, state, CLI.

Layering, one way only:

    compat_http/   route tables of the legacy REST APIs; derives routes from tools (imports server)
        |
    server/        registry.py (ToolSet, ToolRegistry, ToolEntry), context.py (CallContext, Services),
                   errors.py; the doors: mcp_binding.py + mcp_http.py (MCP), app.py + http_front.py
                   (HTTP), cli.py (shell); auth.py, metrics.py, logs.py, settings.py, state.py
        |
    tools/<domain>/tools.py   tool declarations (import server.registry, server.errors, schemas only)
    tools/<domain>/*.py       pure engines: numpy/pyarrow, no door, no SDK, no FastAPI
        |
    schemas/       shared contracts (SimulationManifest, canonical events); imports nothing of ours

The server reaches tools and compat tables only by discovery (`discover_tools`,
`discover_profiles`), so adding a capability is adding a module, never editing a door.
"""
