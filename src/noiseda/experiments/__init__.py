"""Experiments made of many runs: sweeps, the ablation study, the methods comparison."""
