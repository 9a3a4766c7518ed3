"""benchmarks package (under construction)."""
