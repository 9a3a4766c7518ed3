"""datasets package (under construction)."""
