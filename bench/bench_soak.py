"""Kill -9 soak: kill workbench at random moments and ask `doctor` what the kill left behind.

    python bench/bench_soak.py                 # 30 trials
    python bench/bench_soak.py --trials 12 --seed 7

One workspace is built first (a synthesised drum library imported, dsp features extracted, two
logreg versions trained). Each trial copies it, starts one operation — import, features extract,
train followed in the CLI (the CLI is killed; its detached worker goes on), train's worker
(killed itself), models activate, gates run — and sends SIGKILL after a random delay drawn
between 0 and how long that operation took once unhurt. Then it waits until no job's process
runs and runs `doctor --json` on the workspace as the kill left it; when doctor finds something,
`doctor --repair --json` and `doctor --json` again. A trial is

  clean     doctor found nothing,
  repaired  doctor found something and --repair fixed all of it,
  damaged   something is still wrong after --repair.

Processes the kill left running (pool workers reparented to init) are counted too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.audio.synth import DEMO_PACKS, write_curated_library  # noqa: E402

CLASSES = ("kick", "snare", "hihat_closed")
TRAIN = ["--model", "logreg", "--min-class-samples", "2", "--split", "clip"]


def cli(ws: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", "--headless", "--workspace", str(ws), *args]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def run(command: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=environment(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of every live process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z":
            found[int(entry)] = (int(fields[1]), command)
    return found


def descendants(pid: int) -> set[int]:
    table = processes()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, (parent, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


def build_base(folder: Path, per_pack: int) -> tuple[Path, Path]:
    """The workspace every trial starts from, and a folder of new clips for the import trials."""
    library = folder / "library"
    write_curated_library(library, per_pack, classes=CLASSES, packs=DEMO_PACKS[:3])
    extra = folder / "extra"
    write_curated_library(extra, per_pack * 3, classes=CLASSES, packs=DEMO_PACKS[3:5], seed=1)
    ws = folder / "base"
    for step in (["import", str(library), "--curated"], ["features", "extract", "--extractor", "dsp"],
                 ["train", "--name", "drums", *TRAIN], ["train", "--name", "drums", *TRAIN, "--seed", "1"]):
        result = run(cli(ws, *step))
        if result.returncode != 0:
            raise SystemExit(f"building the base workspace: {' '.join(step)} failed:\n{result.stderr}")
    return ws, extra


def running_workers(ws: Path) -> list[int]:
    """The live processes of the jobs recorded as live, read straight from the store: going
    through `jobs list` would mark the jobs of killed processes interrupted before doctor looks."""
    from engine.store.jobs import live_jobs
    from engine.workspace import Workspace

    with Workspace(ws).db.transaction() as con:
        pids = {job.pid for job in live_jobs(con) if job.pid}
    return sorted(pids & set(processes()))


def operations(extra: Path) -> dict[str, list[str]]:
    return {
        "import": ["import", str(extra), "--curated"],
        "extract": ["features", "extract", "--extractor", "mel"],
        "train (CLI)": ["train", "--name", "drums", *TRAIN, "--seed", "2"],
        "train (worker)": ["train", "--name", "drums", *TRAIN, "--seed", "3", "--detach", "--json"],
        "activate": ["models", "activate", "drums@1", "--force", "--reason", "soak"],
        "gates": ["gates", "run", "--model", "drums@2"],
    }


def job_record(ws: Path, job_id: str):
    """A job's row read straight from the store (the CLI would take a second to start)."""
    from engine.store.jobs import jobs_by_id
    from engine.workspace import Workspace

    with Workspace(ws).db.transaction() as con:
        return jobs_by_id(con, job_id, 1)[0]


def started_job(started: subprocess.Popen) -> str:
    """The job id a `train --detach --json` printed."""
    output, _ = started.communicate(timeout=120)
    return json.loads(output)["job_id"]


def worker_pid(ws: Path, job_id: str) -> int | None:
    """The pid of the worker once it has taken its job over."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = job_record(ws, job_id)
        if job.state != "pending" and job.pid:
            return job.pid
        time.sleep(0.02)
    return None


def timed(ws: Path, name: str, args: list[str]) -> float:
    """How long the operation takes unhurt (for `train (worker)`, the worker's part)."""
    started = time.monotonic()
    if name == "train (worker)":
        job_id = started_job(subprocess.Popen(cli(ws, *args), env=environment(), cwd=ROOT, stdout=subprocess.PIPE,
                                              stderr=subprocess.DEVNULL, text=True))
        worker_pid(ws, job_id)
        started = time.monotonic()
        while not job_record(ws, job_id).state.is_final:
            time.sleep(0.05)
    else:
        run(cli(ws, *args))
    return time.monotonic() - started


def doctor(ws: Path, *extra: str) -> dict:
    result = run(cli(ws, "doctor", "--json", *extra))
    try:
        return json.loads(result.stdout)
    except ValueError:
        return {"ok": False, "found": -1, "checks": [], "error": result.stderr[-400:]}


def problems(report: dict) -> list[str]:
    return [finding["problem"] for check in report.get("checks", []) for finding in check["findings"]
            if finding["fixed"] is None] or ([report["error"]] if "error" in report else [])


def trial(base: Path, scratch: Path, name: str, args: list[str], delay: float) -> dict:
    ws = scratch / "ws"
    shutil.rmtree(ws, ignore_errors=True)
    shutil.copytree(base, ws)
    before = set(processes())
    started = subprocess.Popen(cli(ws, *args), env=environment(), cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    job_id = None
    if name == "train (worker)":
        job_id = started_job(started)
        victim = worker_pid(ws, job_id)
    else:
        victim = started.pid
    time.sleep(delay)
    family = descendants(victim) if victim else set()
    if victim:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass
    started.wait()
    ended_first = job_id is not None and job_record(ws, job_id).state.is_final  # the kill came too late
    deadline = time.monotonic() + 300
    while running_workers(ws) and time.monotonic() < deadline:  # a followed job's worker goes on after its CLI
        time.sleep(0.5)
    leftover_deadline = time.monotonic() + 10
    while (left := family & set(processes())) and time.monotonic() < leftover_deadline:
        time.sleep(0.1)
    first = doctor(ws)
    outcome = {"operation": name, "delay_s": round(delay, 2), "leftover_processes": len(left),
               "ended_before_kill": ended_first,
               "found": problems(first) if not first.get("ok") else []}
    if first.get("ok"):
        outcome["result"] = "clean"
    else:
        doctor(ws, "--repair")
        after = doctor(ws)
        outcome["result"] = "repaired" if after.get("ok") else "damaged"
        outcome["after_repair"] = problems(after)
        outcome["found"] = [f["problem"] for c in first.get("checks", []) for f in c["findings"]] or outcome["found"]
    new = set(processes()) - before
    for pid in new & family:  # never leave a stray worker of ours behind, whatever the result
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-pack", type=int, default=6, help="clips per class and pack in the base library")
    options = parser.parse_args()
    rng = random.Random(options.seed)
    with tempfile.TemporaryDirectory(prefix="workbench-soak-") as folder:
        folder = Path(folder)
        started = time.monotonic()
        base, extra = build_base(folder, options.per_pack)
        ops = operations(extra)
        print(f"base workspace built in {time.monotonic() - started:.0f} s", flush=True)
        durations = {}
        for name, args in ops.items():
            scratch = folder / "timing"
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.copytree(base, scratch)
            durations[name] = timed(scratch, name, args)
            print(f"  {name}: {durations[name]:.1f} s unhurt", flush=True)
        names = list(ops)
        results = []
        for number in range(options.trials):
            name = names[number % len(names)]
            delay = rng.uniform(0.0, durations[name])
            outcome = trial(base, folder / "trial", name, ops[name], delay)
            results.append(outcome)
            print(f"trial {number + 1:2d} {name:15s} kill at {outcome['delay_s']:5.2f} s: {outcome['result']}"
                  + (f"; found: {' | '.join(outcome['found'])}" if outcome["found"] else "")
                  + (f"; still: {' | '.join(outcome['after_repair'])}" if outcome.get("after_repair") else "")
                  + (f"; {outcome['leftover_processes']} process(es) left running" if outcome["leftover_processes"] else "")
                  + ("; (the job had ended before the kill)" if outcome["ended_before_kill"] else ""),
                  flush=True)
    totals = Counter(outcome["result"] for outcome in results)
    by_operation: dict[str, Counter] = defaultdict(Counter)
    for outcome in results:
        by_operation[outcome["operation"]][outcome["result"]] += 1
    print()
    print(f"{'operation':16s} {'trials':>6s} {'clean':>6s} {'repaired':>8s} {'damaged':>7s}")
    for name in names:
        counts = by_operation[name]
        print(f"{name:16s} {sum(counts.values()):6d} {counts['clean']:6d} {counts['repaired']:8d} {counts['damaged']:7d}")
    leftover = sum(outcome["leftover_processes"] for outcome in results)
    print(f"\ntrials {len(results)} / clean {totals['clean']} / repaired {totals['repaired']} / "
          f"damaged {totals['damaged']}; processes left running after a kill: {leftover}")


if __name__ == "__main__":
    main()
