"""Scoring restorers: metrics, LPIPS, statistics, plots, contact sheets, run reports, `noiseda evaluate`."""
