"""Reverse ETL: models (SQL queries on a database) synced out as Segment events.

Each run of a sync queries its model, diffs the result against a durable snapshot of
what was sent (added / changed / removed rows), turns the changes into track or
identify events and sends them to Trackway's own ingest or any Segment-compatible
endpoint. The snapshot advances only for rows whose send was acknowledged.
"""
