"""Diagnostics of noise-da: `noiseda probe-conditions` and `noiseda probe-gradient`."""
