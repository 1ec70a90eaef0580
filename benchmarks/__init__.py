"""Benchmarks of napari-heatseg against classical baselines and peers (not installed; run from the project root)."""
