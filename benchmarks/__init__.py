"""The benchmark: metrics (``benchmarks.metrics``), the evaluate CLI, profiles, the harness that
trains and scores a profile's grid (``python -m benchmarks.harness``) and the report."""
