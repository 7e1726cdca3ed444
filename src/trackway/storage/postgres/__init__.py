"""The PostgreSQL backend: the event log and the workspace state shared by many processes."""
