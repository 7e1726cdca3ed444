"""The workspace as data: sources (later destinations and syncs) and `trackway apply`."""
