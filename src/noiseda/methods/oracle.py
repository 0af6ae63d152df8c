"""The oracle: supervised training on *real* noisy/clean pairs, the upper bound against which
"gap closed" is measured (evaluate --compare --oracle). The training is vanilla's; what makes
it the oracle is the data, so it refuses a synthetic degradation: give data.pairs (or
data.pairs_input + data.pairs_target) of real pairs.
"""

from __future__ import annotations

from noiseda.methods.base import TableRow, register_method
from noiseda.methods.vanilla import Vanilla
from noiseda.errors import NoisedaError


@register_method("oracle")
class Oracle(Vanilla):
    # compare-methods adds it with --oracle-pairs (real pairs), never by default
    table = TableRow(space="-", trained_on="real pairs", default=False, order=90)

    @classmethod
    def check_config(cls, cfg, options) -> None:
        d = cfg.data
        if d.clean or not (d.pairs or d.pairs_input):
            raise NoisedaError("method oracle trains on real pairs: set data.pairs (or data.pairs_input + "
                               "data.pairs_target) to real noisy/clean pairs and leave data.clean empty")
