"""Jobs as one concept: their states, the registry of kinds the worker runs, and the follower."""

from __future__ import annotations

import os
import time

import pytest
from textual.app import App
from textual.message import Message
from textual.widgets import Label

from conftest import curated_library
from engine.concepts import JobState
from engine.errors import NotFound, WorkbenchError
from engine.features.extract import load_features
from engine.features.service import run_extract_job, workspace_targets
from engine.features.spec import FeatureSpec
from engine.jobs.follow import follow_job, newest_progress_only
from engine.jobs.kinds import job_kind, runner_for
from engine.jobs.log import JobLog, get_job, spawn_job
from engine.library.importer import import_folder
from engine.store.jobs import JobEvent
from tui.widgets.jobline import JobLine
from tui_pilot import shown_text, wait_for


def test_states_are_stored_and_printed_as_their_values_and_know_whether_the_job_ended(workspace):
    assert [state for state in JobState if state.is_final] == ["completed", "failed", "cancelled", "interrupted"]
    assert all(state.is_live != state.is_final for state in JobState)
    job = JobLog(workspace, "train", {}, state=JobState.PENDING)
    job.state(JobState.TRAINING, "fitting")
    record = get_job(workspace, job.job_id)
    assert record.state is JobState.TRAINING and f"{record.state}" == "training"
    assert record.to_dict()["state"] == "training"


def test_a_kind_is_registered_once_and_an_unknown_kind_has_no_runner():
    assert runner_for("extract") is run_extract_job
    assert job_kind("extract")(run_extract_job) is run_extract_job  # the same runner again is no change
    with pytest.raises(ValueError, match="already run by run_extract_job"):
        job_kind("extract")(lambda workspace, job, params, cancel: None)
    with pytest.raises(WorkbenchError, match="no worker for jobs of kind 'nonesuch'"):
        runner_for("nonesuch")


def test_only_the_newest_progress_event_of_a_poll_is_kept_and_the_others_all_are():
    events = [JobEvent(1, "progress", {"progress": 0.1}), JobEvent(2, "epoch", {"epoch": 1}),
              JobEvent(3, "progress", {"progress": 0.2}), JobEvent(4, "metric", {}), JobEvent(5, "log", {})]
    assert [event.seq for event in newest_progress_only(events)] == [2, 3, 4, 5]
    assert newest_progress_only([]) == []


def test_the_follower_yields_new_events_until_the_job_ends(workspace):
    job = JobLog(workspace, "extract", {})
    job.progress(0.25, force=True)
    job.progress(0.5, force=True)
    job.event("epoch", {"epoch": 1})
    updates = follow_job(workspace, job.job_id[-6:], poll_s=0.01)
    first = next(updates)
    assert first.job.state == JobState.RUNNING
    assert [(event.seq, event.kind) for event in first.events] == [(2, "progress"), (3, "epoch")]
    job.event("log", {"message": "halfway"})
    job.finish(JobState.COMPLETED, result={"n": 1})
    rest = list(updates)
    assert rest[-1].job.state == JobState.COMPLETED and rest[-1].job.progress == 1.0
    assert [event.kind for update in rest for event in update.events] == ["log"]


def test_a_job_that_writes_every_few_seconds_keeps_its_writes_and_a_job_written_with_it_shares_them(workspace):
    from engine.jobs.log import job_events

    def seen(job):
        return get_job(workspace, job.job_id), [(e.seq, e.kind) for e in job_events(workspace, job.job_id)]

    sweep = JobLog(workspace, "sweep", {})
    sweep.write_every(3600)
    sweep.state(JobState.RUNNING, "sweep s")
    trial = JobLog(workspace, "train", {"trial": 0}, state=JobState.PREPARING, write_with=sweep)
    assert seen(sweep)[1] == []  # the trial's record is kept with the sweep's writes
    with pytest.raises(NotFound):
        get_job(workspace, trial.job_id)
    trial.event("data", {"n": 3})
    trial.state(JobState.TRAINING)
    trial.events([("epoch", {"epoch": 1}), ("epoch", {"epoch": 2})], progress=0.5, message="epoch 2/4")
    trial.finish(JobState.COMPLETED, result={"val": 1.0})  # its end waits with the rest
    sweep.event("trial", {"trial": 0})
    following = JobLog(workspace, "train", {"trial": 1}, state=JobState.PREPARING, write_with=sweep)
    with pytest.raises(NotFound):
        get_job(workspace, following.job_id)
    sweep.flush()  # made them, records first, in order, in one transaction
    record, events = seen(trial)
    assert record.state == JobState.COMPLETED and record.result == {"val": 1.0} and record.progress == 1.0
    assert events == [(1, "data"), (2, "state"), (3, "epoch"), (4, "epoch")]
    assert seen(sweep)[1] == [(1, "state"), (2, "trial")]
    assert seen(following)[0].state == JobState.PREPARING and seen(following)[1] == []
    following.state(JobState.TRAINING, "fitting")
    for epoch in (1, 2):
        following.event("epoch", {"epoch": epoch}, progress=epoch / 4, message=f"epoch {epoch}/4")
    sweep.beat()
    record, events = seen(following)
    assert events == [(1, "state"), (2, "epoch"), (3, "epoch")]
    assert (record.state, record.progress, record.message) == (JobState.TRAINING, 0.5, "epoch 2/4")
    sweep.finish(JobState.COMPLETED)
    assert seen(sweep)[0].state == JobState.COMPLETED

    plain = JobLog(workspace, "train", {})  # without write_every each write is made at once
    plain.event("epoch", {"epoch": 1})
    assert seen(plain)[1] == [(1, "epoch")]


def test_the_follower_stops_when_told(workspace):
    job = JobLog(workspace, "train", {})
    updates = list(follow_job(workspace, job.job_id, poll_s=0.01, stop=lambda: True))
    assert len(updates) == 1 and updates[0].job.state == JobState.RUNNING


def test_an_extract_job_runs_in_a_worker_process(workspace, tmp_path):
    curated_library(tmp_path / "curated", classes=("kick", "hihat_closed"), per_pack=1)
    import_folder(workspace, tmp_path / "curated", curated=True, workers=1)
    spec = FeatureSpec.parse("dsp")
    job_id = spawn_job(workspace, "extract", {"spec": spec.to_dict(), "labelled_only": False, "taxonomy": None})
    deadline = time.monotonic() + 120
    while get_job(workspace, job_id).state.is_live and time.monotonic() < deadline:
        time.sleep(0.2)
    record = get_job(workspace, job_id)
    try:
        os.waitpid(record.pid, 0)  # collect the worker this process started
    except ChildProcessError:
        pass  # collected already
    assert record.state == JobState.COMPLETED, record.error
    targets = workspace_targets(workspace)
    assert record.result["extracted"] == len(targets) > 0
    _, kept = load_features(workspace.cache, targets, spec.extractors(workspace.embeddings_dir))
    assert len(kept) == len(targets)


class LineApp(App):
    """One JobLine on a screen, reading the given workspace; keeps the messages it posts."""

    def __init__(self, workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.seen: list[Message] = []

    def compose(self):
        yield JobLine(message_id="line-message", progress_id="line-progress")

    def on_job_line_updated(self, message: JobLine.Updated) -> None:
        self.seen.append(message)

    def on_job_line_ended(self, message: JobLine.Ended) -> None:
        self.seen.append(message)


async def test_the_job_line_follows_a_job_reads_nothing_while_paused_and_says_when_it_ended(workspace):
    job = JobLog(workspace, "gates", {})
    app = LineApp(workspace)
    async with app.run_test() as pilot:
        line = app.query_one(JobLine)
        message = app.query_one("#line-message", Label)
        line.follow(job.job_id, "checking")
        job.progress(0.5, "halfway", force=True)
        await wait_for(pilot, lambda: "checking: halfway · c cancels" in shown_text(message), "the job's message")
        assert line.bar.display and line.bar.progress == 0.5

        line.pause()
        job.event("epoch", {"epoch": 1, "total_epochs": 2})
        await pilot.pause(0.5 + 0.3)
        assert line.curve.epochs == []  # not read while paused
        line.resume()
        await wait_for(pilot, lambda: line.curve.epochs, "the epoch written while paused")

        job.finish(JobState.FAILED, error="no data")
        await wait_for(pilot, lambda: any(isinstance(m, JobLine.Ended) for m in app.seen), "the end of the job")
        ended = app.seen[-1]
        assert isinstance(ended, JobLine.Ended) and ended.job.state == JobState.FAILED and ended.job.error == "no data"
        assert line.job_id is None and not line.bar.display
        updates = [m for m in app.seen if isinstance(m, JobLine.Updated)]
        assert sum(m.new_events for m in updates) == 2  # the progress, then the epoch
