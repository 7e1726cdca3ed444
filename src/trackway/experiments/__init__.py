"""Experiments: exposures and goals reduced to per-variation statistics and analysed."""
