"""The store is the one place with SQL: every other module calls its repositories."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SQL = re.compile(
    r"\.execute(many)?\(|\.sql\(|\bSELECT\b[\s\S]{0,200}?\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b"
    r"|\bDELETE\s+FROM\b"
)


def sql_in(root: Path, packages: tuple[str, ...], allowed: Path) -> list[str]:
    """`file:line: text` for each piece of SQL under `root/<package>` outside the `allowed` folder."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if allowed in path.parents:
                continue
            text = path.read_text()
            for match in SQL.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(root)}:{line}: {match.group(0)[:40]!r}")
    return found


def test_sql_lives_only_in_the_store():
    assert sql_in(ROOT, ("engine", "cli", "tui"), ROOT / "engine" / "store") == []


def test_the_check_finds_sql_outside_the_store_and_allows_it_inside(tmp_path):
    (tmp_path / "engine" / "store").mkdir(parents=True)
    (tmp_path / "engine" / "store" / "clips.py").write_text('con.execute("SELECT path FROM clips")\n')
    (tmp_path / "engine" / "stats.py").write_text('x = 1\nrows = con.execute(\n    "SELECT count(*)\\n FROM clips")\n')
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "drop.py").write_text('q = "DELETE FROM labels WHERE clip_id = ?"\n')
    found = sql_in(tmp_path, ("engine", "cli"), tmp_path / "engine" / "store")
    assert sorted(entry.split(": ")[0] for entry in found) == ["cli/drop.py:1", "engine/stats.py:2", "engine/stats.py:3"]
