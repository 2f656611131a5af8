"""The kinds of job a worker process can run, each registered once with its runner.

The module that owns a kind's work registers it (`@job_kind("train")` on its runner); the worker
imports those modules and dispatches by a job's kind. This module imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.errors import WorkbenchError

# runner(workspace, job: JobLog, params: dict, cancel: CancelToken): does the job's work through `job`
Runner = Callable[..., None]

_RUNNERS: dict[str, Runner] = {}


def job_kind(kind: str) -> Callable[[Runner], Runner]:
    """Register the decorated function as the runner of jobs of `kind`."""
    def register(runner: Runner) -> Runner:
        if _RUNNERS.setdefault(kind, runner) is not runner:
            raise ValueError(f"jobs of kind {kind!r} already run by {_RUNNERS[kind].__qualname__}")
        return runner
    return register


def runner_for(kind: str) -> Runner:
    try:
        return _RUNNERS[kind]
    except KeyError:
        raise WorkbenchError(f"no worker for jobs of kind {kind!r}") from None

