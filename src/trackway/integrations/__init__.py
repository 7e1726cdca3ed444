"""Optional integrations that send events to Trackway from other SDKs (feature flags)."""
