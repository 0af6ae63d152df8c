"""Adaptation methods, one file each: a method registers itself (``@register_method``) by
living in this package; base.py holds the contract every method declares.
"""

import importlib
import pkgutil
import sys

from noiseda.methods.base import (  # noqa: F401  (the package's interface)
    METHODS, Batch, Method, TableRow, build_method, check_method_config, lambda_at, method_class,
    register_method,
)


def discover() -> None:
    """Import every module (or subpackage) of this package that is not imported yet: members
    are found, not listed. Runs on import; again after a folder is added to ``__path__``."""
    for member in pkgutil.iter_modules(__path__):
        name = f"{__name__}.{member.name}"
        if member.name != "base" and name not in sys.modules:
            importlib.import_module(name)


discover()
