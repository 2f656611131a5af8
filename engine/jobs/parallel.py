"""Map a function over items in worker processes, with progress and cancellation.

Workers ignore SIGINT: Ctrl-C reaches the parent, which sets the cancel flag, stops handing out
work, and keeps every result that was already finished. Workers end with their parent: killed
with it on Linux (the parent-death signal), and on any system when a watch thread sees that the
process that started them is gone (kill -9 of an import must not leave workers running). Small
batches run in-process, where starting workers would cost more than it saves.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from engine.progress import CancelToken, Reporter
from engine.settings import cpu_threads

Item = TypeVar("Item")
Result = TypeVar("Result")

INLINE_BELOW = 16


def default_workers() -> int:
    return cpu_threads()


PARENT_POLL_S = 0.5
_PR_SET_PDEATHSIG = 1


def _die_with_parent(owner_pid: int) -> None:
    """End this worker when its parent dies, however it dies. The parent is the pool's owner
    (`owner_pid`), or a fork server that ends with the owner."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:  # the process's own symbols hold libc's (find_library would run ldconfig in every worker)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watch thread below still ends the worker
    try:
        os.kill(owner_pid, 0)
    except ProcessLookupError:  # the owner died before the signal was armed
        os._exit(1)
    except PermissionError:
        pass
    if os.getppid() != parent:  # the parent died while the signal was being armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@functools.cache
def _thread_pools():
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries. Finding them takes tens of
    milliseconds; a forked worker inherits the parent's view instead of looking again."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():
    """A context in which the BLAS/OpenMP libraries run on one thread each: threadpoolctl's
    `threadpool_limits(limits=1)` over the libraries loaded when `_thread_pools` first looked (numpy's
    and scipy's), found once per process rather than on every call, where looking costs a
    millisecond, more than a small batch's work."""
    return _thread_pools().limit(limits=1)


def _worker_start(owner_pid: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    _die_with_parent(owner_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _thread_pools().limit(limits=1)  # small DSP matrix products run slower, not faster, on several BLAS threads
    if initializer is not None:
        initializer(*initargs)


def _run_chunk(function: Callable[[Any], Any], chunk: Sequence[Any]) -> list[Any]:
    return [function(item) for item in chunk]


def parallel_map(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    *,
    workers: int | None = None,
    chunk_size: int = 4,
    reporter: Reporter | None = None,
    cancel: CancelToken | None = None,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    inline_below: int = INLINE_BELOW,
) -> Iterator[tuple[Item, Result]]:
    """Yield (item, function(item)) as results arrive, in no fixed order.

    `function` must be a picklable module-level function. Stops early (without raising) when
    `cancel` is set; the caller decides what a cancelled run means.
    """
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(items) < inline_below:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            if cancel is not None and cancel.cancelled:
                return
            with one_blas_thread():
                result = function(item)
            if reporter is not None:
                reporter.advance(1)
            yield item, result
        return
    chunks: Iterable[Sequence[Item]] = (items[i : i + chunk_size] for i in range(0, len(items), chunk_size))
    chunk_iter = iter(chunks)
    _thread_pools()  # found once here, before the workers fork
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_start,
                               initargs=(os.getpid(), initializer, initargs))
    in_flight: dict[Future, Sequence[Item]] = {}
    try:
        def submit_more() -> None:
            while len(in_flight) < workers * 3 and not (cancel is not None and cancel.cancelled):
                chunk = next(chunk_iter, None)
                if chunk is None:
                    return
                in_flight[pool.submit(_run_chunk, function, chunk)] = chunk

        submit_more()
        while in_flight:
            done, _ = wait(list(in_flight), timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                chunk = in_flight.pop(future)
                for item, result in zip(chunk, future.result()):
                    yield item, result
                if reporter is not None:
                    reporter.advance(len(chunk))
            if cancel is not None and cancel.cancelled:
                for future in in_flight:
                    future.cancel()
                # keep what the busy workers finish; they stop taking new work
                for future in list(in_flight):
                    if future.cancelled():
                        continue
                    chunk = in_flight[future]
                    for item, result in zip(chunk, future.result()):
                        yield item, result
                in_flight.clear()
                return
            submit_more()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
