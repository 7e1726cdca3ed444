"""The `trackway serve` process: app assembly, lifecycle, health and metrics."""
