"""numpy scalars as the plain Python values JSON, YAML and `==` against user input expect.

Labels, classes and statistics come out of numpy and pandas as `np.int64(1)` or `np.str_("yes")`;
`json.dumps` refuses them and a message would print `np.int64(1)`. Every module that hands such a
value on (metadata, reports, decision rules, error text) unwraps it here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """A numpy scalar as its Python value (`np.int64(1)` -> 1); anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def plain_list(values: Iterable[Any]) -> list[Any]:
    """Every value through `plain`."""
    return [plain(v) for v in values]
