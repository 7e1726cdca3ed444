"""The Segment-compatible tracking API."""
