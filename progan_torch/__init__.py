"""progan_torch package (under construction)."""
