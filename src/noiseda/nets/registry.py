"""The restoration nets' registry: a net registers itself by living in this package."""

from noiseda.registry import Registry

NETS: Registry = Registry("restoration net")
