"""Generated discovery documents (server card, session configuration schema); see `quantdesk export-wellknown`."""
