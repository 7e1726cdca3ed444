"""Destinations: where stored events are delivered, after filters and mappings."""
