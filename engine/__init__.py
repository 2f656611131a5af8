"""The engine: all compute and storage of workbench; it never imports a user interface."""

import os

# OpenMP threads (torch, LightGBM) that spin while waiting make training 10–25× slower on a busy
# 2-core box; let them sleep. It must be set before either library is imported, so it is set here,
# where every import of the engine starts: the CLI, the TUI and each job's worker process.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
