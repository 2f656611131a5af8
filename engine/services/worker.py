"""A job's own process: `python -m engine.services.worker WORKSPACE JOB_ID`.

Started detached by `spawn_job`; survives the terminal that started it. SIGTERM (from `jobs
cancel`) asks the work to stop at its next check; every outcome is written to the job's record.
"""

from __future__ import annotations

import signal

# Until the job's cancel token exists, a SIGTERM only asks for a stop; it never kills half-way.
_early_stop = []
signal.signal(signal.SIGTERM, lambda signum, frame: _early_stop.append(signum))
import sys
import traceback

from engine.errors import Cancelled, WorkbenchError
from engine.jobs.log import JobCancelToken, JobLog, get_job
from engine.workspace import Workspace


def _runner(kind: str):
    if kind == "train":
        from engine.training.run import run_training

        return run_training
    if kind == "gates":
        from engine.gates.runner import run_gates_job

        return run_gates_job
    if kind == "activate":
        from engine.inference import run_activation_job

        return run_activation_job
    raise WorkbenchError(f"no worker for jobs of kind {kind!r}")


def main(argv: list[str]) -> int:
    root, job_id = argv
    workspace = Workspace.open(root, create=False)
    record = get_job(workspace, job_id)
    job = JobLog(workspace, record.kind, record.params, job_id=record.job_id)
    cancel = JobCancelToken(job)
    signal.signal(signal.SIGTERM, lambda signum, frame: cancel.cancel())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if _early_stop:
        cancel.cancel()
    try:
        if cancel.cancelled:
            raise Cancelled("cancelled before it started")
        _runner(record.kind)(workspace, job, record.params, cancel)
    except Cancelled as error:
        job.finish("cancelled", error=str(error) or None)
    except WorkbenchError as error:
        job.finish("failed", error=str(error))
        return 1
    except BaseException as error:
        traceback.print_exc()
        job.finish("failed", error=f"{type(error).__name__}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
