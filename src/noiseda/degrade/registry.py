"""The degradations' registry: a degradation registers itself by living in this package."""

from noiseda.registry import Registry

DEGRADATIONS: Registry = Registry("degradation")
