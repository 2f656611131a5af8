"""The suspect queue: the last `triage suspects` list kept in the workspace, most suspicious first,
so the label screen's "next suspect" walks it (then the clips the active model doubts)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from engine.io import write_json_atomically

QUEUE_NAME = "triage-queue.json"


def queue_path(workspace) -> Path:
    return workspace.reports_dir / QUEUE_NAME


def save_queue(workspace, suspects: Sequence[dict]) -> Path:
    """Keep `suspects` (dicts with at least `clip_id`, in the order to audition them)."""
    document = {"suspects": [dict(s) for s in suspects]}
    return write_json_atomically(queue_path(workspace), document, default=str)


def queued_clips(workspace) -> list[str]:
    """Clip ids of the saved queue in order, each once; empty when there is none (or it is unreadable,
    which a fresh `triage suspects` repairs)."""
    try:
        document = json.loads(queue_path(workspace).read_text())
        return list(dict.fromkeys(s["clip_id"] for s in document["suspects"]))
    except (OSError, ValueError, KeyError, TypeError):
        return []
