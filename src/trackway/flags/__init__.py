"""Feature flags served to the official ConfigCat SDKs (config_v6 over HTTP)."""
