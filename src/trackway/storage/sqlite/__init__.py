"""The embedded backend: SQLite files in the data directory."""
