"""Adaptation methods, one file each: a method registers itself (``@register_method``) by
living in this package; base.py holds the contract every method declares.
"""

import importlib
import pkgutil

from noiseda.methods.base import (  # noqa: F401  (the package's interface)
    METHODS, Batch, Method, TableRow, build_method, check_method_config, lambda_at, method_class,
    register_method,
)

# Members are found, not listed: every module (or subpackage) here but the contract itself.
for _member in pkgutil.iter_modules(__path__):
    if _member.name != "base":
        importlib.import_module(f"{__name__}.{_member.name}")
