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

import engine.features.service  # noqa: F401  (each registers its kind of job)
import engine.gates.runner  # noqa: F401
import engine.library.importer  # noqa: F401
import engine.services.activation  # noqa: F401
import engine.sweeps.run  # noqa: F401
import engine.training.run  # noqa: F401
from engine.concepts import JobState
from engine.errors import Cancelled, WorkbenchError
from engine.jobs.kinds import runner_for
from engine.jobs.log import JobCancelToken, JobLog, get_job
from engine.workspace import Workspace


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
        runner_for(record.kind)(workspace, job, record.params, cancel)
    except Cancelled as error:
        job.finish(JobState.CANCELLED, error=str(error) or None)
    except WorkbenchError as error:
        job.finish(JobState.FAILED, error=str(error))
        return 1
    except BaseException as error:
        traceback.print_exc()
        job.finish(JobState.FAILED, error=f"{type(error).__name__}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
