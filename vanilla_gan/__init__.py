"""vanilla_gan package (under construction)."""
