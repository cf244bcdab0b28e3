"""Cold-start housekeeping shared by the entry modules (importing this costs nothing).

Python's cycle collector would run full passes over an ever larger heap while the libraries
load (a fifth of the import time). An entry switches it off before its imports and, at the
end of init, back on with everything built so far frozen out of its sight: what init built
lives as long as the container and is never worth scanning again.
"""

from __future__ import annotations

import gc


def begin() -> None:
    """Before the entry module's imports."""
    gc.disable()


def end() -> None:
    """At the end of init."""
    gc.freeze()
    gc.enable()
