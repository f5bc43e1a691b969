"""One module per dashboard page; each exposes `page() -> Page` (found by quantdesk.server.ui.site)."""
