"""The web dashboard at `/`: server-rendered pages on the admin API's data."""
