"""A command-line client of any Segment-compatible endpoint (Trackway or Segment itself)."""
