"""The warehouse: a log consumer that loads events into SQL tables in Segment's schema."""
