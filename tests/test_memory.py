import resource
import sys

import numpy as np
import pytest

from engine.memory import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_arrays_made_and_dropped_reuse_memory_instead_of_faulting_fresh_pages_in():
    """Ten rounds of eight 3 MB arrays alive at once, then dropped (as a chunk's spectra and running
    sums are): with the allocator keeping freed memory, their pages are faulted in once, not each round."""
    assert keep_freed_memory()
    size, page = 3 << 20, resource.getpagesize()

    def round_of_arrays() -> None:
        arrays = [np.ones(size // 8) for _ in range(8)]
        assert sum(a[-1] for a in arrays) == 8

    round_of_arrays()  # the first round grows the heap
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        round_of_arrays()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < size // page  # fewer than one array's pages; faulting each round's in is 80 times that
