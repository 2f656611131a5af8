"""The engine and the headless CLI never load the UI, and start without heavy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ENGINE_MODULES = sorted(
    ".".join(path.with_suffix("").parts)
    for path in Path("engine").rglob("*.py")
    if path.name != "__init__.py"
)


def loaded_modules(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parents[1]).stdout
    return set(output.split())


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_module_does_not_import_the_ui(module):
    loaded = loaded_modules(f"import {module}")
    assert not {"textual", "tui"} & {name.split(".")[0] for name in loaded}


def test_headless_cli_starts_without_ui_or_heavy_libraries():
    loaded = {name.split(".")[0] for name in loaded_modules("import cli.main")}
    assert not {"textual", "tui", "torch", "librosa", "onnxruntime", "sklearn", "lightgbm"} & loaded
