"""REST compatibility: one route table per API (native, aleatoric, ...), data only.

Each module here that defines `PROFILE` (a `quantdesk.server.rest_rows.Profile`) is a surface;
the server finds them with `discover_profiles` and derives every route in `server/rest_derive.py`,
so a new legacy API is a new table, never new endpoint code.
"""
