"""Training: the loop, the optimisation step, run folders, checkpoints, resume, progress and signals."""
