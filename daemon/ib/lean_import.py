"""ib_insync without numpy at start: 17 MB of an idle daemon's 60 MB budget (issue #17).

ib_insync's event library, eventkit, imports numpy when it starts, for its array operators
(``Event.array`` and the statistics built on it). tradectl never uses them, and ib_insync
itself has no use for numpy. So ib_insync is imported while ``numpy`` names a stand-in that
imports the real numpy on its first use and forwards to it; the stand-in is removed again at
once, so every later ``import numpy`` (pyarrow writing a records batch, say) loads and gets the
real module as usual. Only the modules that imported numpy during ib_insync's import hold the
stand-in.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

NUMPY = "numpy"


class _NumpyOnFirstUse(ModuleType):
    """Stands for numpy; the real module is imported on the first attribute not set here."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(NUMPY) is self:
            del sys.modules[NUMPY]
        return getattr(importlib.import_module(NUMPY), name)


def import_ib_insync_without_numpy() -> None:
    """Import ib_insync with numpy deferred; a no-op once ib_insync or numpy is loaded."""
    if "ib_insync" in sys.modules or NUMPY in sys.modules:
        return
    stand_in = _NumpyOnFirstUse(NUMPY)
    sys.modules[NUMPY] = stand_in
    try:
        importlib.import_module("ib_insync")
    finally:
        if sys.modules.get(NUMPY) is stand_in:
            del sys.modules[NUMPY]
