"""The provenance repository: where a clip imported from a published dataset came from (dataset
id, config, split, licence and the file or shard row of its bytes). A clip keeps the provenance
of the first dataset it was imported from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

COLUMNS = ("clip_id", "dataset", "config", "split", "license", "origin")


@dataclass(frozen=True)
class Provenance:
    clip_id: str
    dataset: str
    config: str
    split: str | None
    license: str
    origin: str

    @property
    def where(self) -> str:
        """'fsd_subset/default/train': dataset, config and split."""
        return "/".join(part for part in (self.dataset, self.config, self.split) if part)

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in COLUMNS if name != "clip_id"}


def record_provenance(con: duckdb.DuckDBPyConnection, rows: Sequence[Provenance]) -> None:
    """Remember where clips came from; a clip that already has a provenance keeps it."""
    if not rows:
        return
    columns = {name: [getattr(row, name) for row in rows] for name in COLUMNS}
    selects = ", ".join(f"unnest(${name})" for name in COLUMNS)
    con.execute(f"INSERT INTO clip_provenance ({', '.join(COLUMNS)}) SELECT {selects} ON CONFLICT DO NOTHING", columns)


def provenance_of(con: duckdb.DuckDBPyConnection, clip_ids: Sequence[str]) -> dict[str, Provenance]:
    if not clip_ids:
        return {}
    rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM clip_provenance WHERE clip_id IN (SELECT unnest($ids))",
                       {"ids": list(clip_ids)}).fetchall()
    return {row[0]: Provenance(*row) for row in rows}


def licences_of(con: duckdb.DuckDBPyConnection, clip_ids: Sequence[str]) -> dict[str, int]:
    """licence → how many of the clips carry it (clips without a provenance are left out)."""
    rows = con.execute("SELECT license, count(*) FROM clip_provenance WHERE clip_id IN (SELECT unnest($ids)) "
                       "GROUP BY license ORDER BY license", {"ids": list(clip_ids)}).fetchall()
    return dict(rows)
