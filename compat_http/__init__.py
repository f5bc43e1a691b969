"""REST compatibility: one route table per API (native, aleatoric, ...) and the function that derives routes.

Each module here that defines `PROFILE` is a surface; `discover_profiles` finds them all, so a
new legacy API is a new table, not new endpoint code.
"""

from __future__ import annotations

import importlib
import pkgutil

from quantdesk.compat_http.rows import Profile


def discover_profiles() -> list[Profile]:
    profiles = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        profile = getattr(module, "PROFILE", None)
        if isinstance(profile, Profile):
            profiles.append(profile)
    return profiles
