"""How the process's C allocator keeps memory that array work frees.

Feature extraction makes and drops arrays of a few megabytes all the time (a 25 s chunk of a track
is 2 MB of samples, and its spectra several more). glibc's malloc hands each such array its own
fresh pages (mmap) or gives the heap's free top back to the system, so the next array page-faults
its memory in again: on the section-inference bench a fifth of the
CPU time went to those faults. `keep_freed_memory` has it serve arrays below MMAP_THRESHOLD_BYTES
from the heap and keep up to KEEP_FREE_BYTES free there for the next ones.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache

MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest: smaller blocks come from the heap, not pages of their own
KEEP_FREE_BYTES = 32 << 20  # free memory at a heap's top that is kept, not given back to the system
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)


@cache
def keep_freed_memory() -> bool:
    """Set the process's allocator (glibc only; elsewhere nothing) to keep freed memory for the next
    arrays; whether it was set. Once per process: the setting holds for every thread."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, KEEP_FREE_BYTES))
