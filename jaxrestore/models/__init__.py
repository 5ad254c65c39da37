"""Pure linen modules: the generator (and, later, discriminator and quality predictor)."""
