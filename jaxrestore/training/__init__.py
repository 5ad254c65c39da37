"""Training: the loop (`loop`), the stages it runs (`stages`), train state, checkpoints,
sharding, held-out evaluation, config files and checks, and the run directory."""
