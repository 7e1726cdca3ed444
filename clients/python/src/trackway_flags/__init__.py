"""Trackway flag events: Feature Flag Evaluated events from the ConfigCat SDK
(`trackway_flags.configcat_hook`) and any OpenFeature provider
(`trackway_flags.openfeature_hook`), sent through a Segment-style analytics client.

The application-side half of Trackway, installed without the server: see
docs/flag-events.md.
"""

__version__ = "0.1.0"
