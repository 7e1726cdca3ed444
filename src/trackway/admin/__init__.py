"""The admin HTTP API under /api/v1 (bearer admin token)."""
