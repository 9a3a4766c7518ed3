"""progan_tf package (under construction)."""
