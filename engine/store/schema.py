"""The workspace schema, as an ordered list of migrations applied on open.

The schema covers the whole concept model (see engine/concepts.py) even where later features
fill it: clips and the files they were seen at, taxonomies, beat grids, labels, jobs and their
events, model versions and their activations, predictions and gate reports.
Never edit a migration that has shipped: append a new one.
"""

from __future__ import annotations

import duckdb

MIGRATIONS: list[tuple[str, str]] = [
    (
        "initial concept model",
        """
        CREATE TABLE settings (
            key VARCHAR PRIMARY KEY,
            value VARCHAR NOT NULL
        );
        CREATE TABLE clips (
            clip_id VARCHAR PRIMARY KEY,          -- sha256 of the file's bytes
            path VARCHAR NOT NULL,                -- where the clip was last seen
            source VARCHAR NOT NULL,              -- pack / source folder
            format VARCHAR NOT NULL,
            duration_s DOUBLE NOT NULL,
            sample_rate INTEGER NOT NULL,
            channels INTEGER NOT NULL,
            frames BIGINT NOT NULL,
            size_bytes BIGINT NOT NULL,
            peak DOUBLE NOT NULL,
            rms_db DOUBLE NOT NULL,
            clipped_fraction DOUBLE NOT NULL,
            imported_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE clip_files (
            path VARCHAR PRIMARY KEY,             -- every path a clip's bytes were found at
            clip_id VARCHAR NOT NULL,
            size_bytes BIGINT NOT NULL,
            mtime_ns BIGINT NOT NULL,
            seen_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE taxonomies (
            name VARCHAR PRIMARY KEY,
            definition JSON NOT NULL,             -- snapshot of the label set used in this workspace
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE beat_grids (
            clip_id VARCHAR PRIMARY KEY,
            bpm DOUBLE NOT NULL,
            offset_s DOUBLE NOT NULL,
            beats_per_bar INTEGER NOT NULL,
            beat_times DOUBLE[],                  -- explicit beats, or NULL for a constant tempo
            origin VARCHAR NOT NULL,              -- detected | user | import
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE SEQUENCE label_ids START 1;
        CREATE TABLE labels (
            label_id BIGINT PRIMARY KEY DEFAULT nextval('label_ids'),
            clip_id VARCHAR NOT NULL,
            taxonomy VARCHAR NOT NULL,
            segment_key VARCHAR NOT NULL,         -- 'whole' | 't:start-end' | 'b:start-end'
            label VARCHAR NOT NULL,
            origin VARCHAR NOT NULL,              -- user | import | model
            confidence DOUBLE NOT NULL,
            start_s DOUBLE,
            end_s DOUBLE,
            start_beat DOUBLE,
            end_beat DOUBLE,
            split VARCHAR,                        -- fixed split from a manifest, or NULL
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            UNIQUE (clip_id, taxonomy, segment_key, origin)
        );
        -- The label that counts for each segment: user beats import beats model, newest first.
        CREATE VIEW effective_labels AS
            SELECT * EXCLUDE (winner_rank) FROM (
                SELECT *, row_number() OVER (
                    PARTITION BY clip_id, taxonomy, segment_key
                    ORDER BY CASE origin WHEN 'user' THEN 0 WHEN 'import' THEN 1 ELSE 2 END,
                             updated_at DESC, label_id DESC
                ) AS winner_rank
                FROM labels
            ) WHERE winner_rank = 1;
        CREATE TABLE jobs (
            job_id VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL,                -- extract | train | evaluate | sweep | infer
            state VARCHAR NOT NULL,               -- pending | preparing | running | training | evaluating | completed | failed | cancelled
            params JSON,
            progress DOUBLE NOT NULL DEFAULT 0,
            message VARCHAR,
            pid INTEGER,
            host VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            started_at TIMESTAMP,
            finished_at TIMESTAMP,
            error VARCHAR,
            result JSON
        );
        CREATE TABLE job_events (
            job_id VARCHAR NOT NULL,
            seq INTEGER NOT NULL,
            happened_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            kind VARCHAR NOT NULL,                -- progress | epoch | metric | log | state
            data JSON,
            PRIMARY KEY (job_id, seq)
        );
        CREATE SEQUENCE model_ids START 1;
        CREATE TABLE model_versions (
            model_id BIGINT PRIMARY KEY DEFAULT nextval('model_ids'),
            name VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            task VARCHAR NOT NULL,                -- the taxonomy it predicts
            kind VARCHAR NOT NULL,                -- logreg | mlp | lgbm | cnn
            artifact_dir VARCHAR NOT NULL,
            feature_spec JSON NOT NULL,
            label_set JSON NOT NULL,
            label_counts JSON,
            hyperparams JSON,
            metrics JSON,
            dataset_fingerprint VARCHAR,
            job_id VARCHAR,
            last_gate_report_id BIGINT,
            reject_threshold DOUBLE,
            is_active BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            UNIQUE (name, version)
        );
        CREATE SEQUENCE activation_ids START 1;
        CREATE TABLE activations (
            activation_id BIGINT PRIMARY KEY DEFAULT nextval('activation_ids'),
            name VARCHAR NOT NULL,
            version INTEGER,
            previous_version INTEGER,
            reason VARCHAR,
            forced BOOLEAN NOT NULL DEFAULT false,
            activated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE predictions (
            model_id BIGINT NOT NULL,
            clip_id VARCHAR NOT NULL,
            segment_key VARCHAR NOT NULL,
            start_s DOUBLE,
            end_s DOUBLE,
            label VARCHAR NOT NULL,
            confidence DOUBLE NOT NULL,
            probabilities JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (model_id, clip_id, segment_key)
        );
        CREATE SEQUENCE gate_report_ids START 1;
        CREATE TABLE gate_reports (
            report_id BIGINT PRIMARY KEY DEFAULT nextval('gate_report_ids'),
            scope VARCHAR NOT NULL,               -- dataset | model
            model_id BIGINT,
            dataset_fingerprint VARCHAR,
            passed BOOLEAN NOT NULL,
            report JSON NOT NULL,
            path VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE INDEX clip_files_by_clip ON clip_files (clip_id);
        CREATE INDEX labels_by_clip ON labels (clip_id);
        """,
    ),
    (
        "cancel requests for jobs; model version metadata",
        """
        ALTER TABLE jobs ADD COLUMN cancel_requested BOOLEAN DEFAULT false;
        ALTER TABLE model_versions ADD COLUMN meta JSON;
        """,
    ),
    (
        "labelling lead time",
        """
        ALTER TABLE labels ADD COLUMN lead_time_s DOUBLE;  -- seconds a person took to make the label, when timed
        """,
    ),
    (
        "retired clips: a clip whose file was edited in place leaves the library, its labels kept",
        """
        CREATE TABLE retired_clips (
            clip_id VARCHAR PRIMARY KEY,
            path VARCHAR NOT NULL,                -- where its bytes were last seen
            source VARCHAR NOT NULL,
            format VARCHAR NOT NULL,
            duration_s DOUBLE NOT NULL,
            sample_rate INTEGER NOT NULL,
            channels INTEGER NOT NULL,
            frames BIGINT NOT NULL,
            size_bytes BIGINT NOT NULL,
            peak DOUBLE NOT NULL,
            rms_db DOUBLE NOT NULL,
            clipped_fraction DOUBLE NOT NULL,
            replaced_by VARCHAR NOT NULL,         -- the clip whose bytes took its place at that path
            retired_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        -- A retired clip's labels stay in `labels` (history) but no longer count.
        CREATE OR REPLACE VIEW effective_labels AS
            SELECT * EXCLUDE (winner_rank) FROM (
                SELECT *, row_number() OVER (
                    PARTITION BY clip_id, taxonomy, segment_key
                    ORDER BY CASE origin WHEN 'user' THEN 0 WHEN 'import' THEN 1 ELSE 2 END,
                             updated_at DESC, label_id DESC
                ) AS winner_rank
                FROM labels WHERE clip_id NOT IN (SELECT clip_id FROM retired_clips)
            ) WHERE winner_rank = 1;
        """,
    ),
    (
        "job heartbeats",
        """
        ALTER TABLE jobs ADD COLUMN heartbeat_s DOUBLE;  -- seconds since the epoch of the job's last sign of life
        """,
    ),
    (
        "technique tags on labels",
        """
        ALTER TABLE labels ADD COLUMN techniques VARCHAR[];  -- playing techniques from the taxonomy's catalogue
        """,
    ),
    (
        "clip provenance from published datasets",
        """
        CREATE TABLE clip_provenance (
            clip_id VARCHAR PRIMARY KEY,          -- a clip imported from a dataset (the first one it came from)
            dataset VARCHAR NOT NULL,             -- the dataset's id (its folder's name unless given)
            config VARCHAR NOT NULL,              -- its configuration ("default" when it has one)
            split VARCHAR,                        -- train / validation / test, as the dataset has it
            license VARCHAR NOT NULL,             -- the licence its card declares, e.g. cc-by-4.0
            origin VARCHAR NOT NULL,              -- the file or shard row the bytes came from
            imported_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        """,
    ),
    (
        "suggestions: a model's labels on unlabelled clips for a person to accept, reject or correct",
        """
        CREATE SEQUENCE suggestion_ids START 1;
        CREATE TABLE suggestions (
            suggestion_id BIGINT PRIMARY KEY DEFAULT nextval('suggestion_ids'),
            clip_id VARCHAR NOT NULL,
            taxonomy VARCHAR NOT NULL,
            segment_key VARCHAR NOT NULL,
            start_s DOUBLE,
            end_s DOUBLE,
            label VARCHAR NOT NULL,               -- what the model suggests
            confidence DOUBLE NOT NULL,           -- the model's probability of it
            model_id BIGINT NOT NULL,
            model_ref VARCHAR NOT NULL,           -- name@N, kept when the version is deleted
            rank INTEGER NOT NULL,                -- 1 = the most informative of its batch
            score DOUBLE NOT NULL,                -- its uncertainty (see engine/triage/suggestions.py)
            outcome VARCHAR,                      -- NULL while pending, else accepted | rejected | corrected
            corrected_to VARCHAR,                 -- the label a person gave instead (corrected)
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            decided_at TIMESTAMP
        );
        """,
    ),
]


def schema_version(connection: duckdb.DuckDBPyConnection) -> int:
    exists = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations' "
        "AND table_catalog = current_database()"
    ).fetchone()[0]
    if not exists:
        return 0
    return connection.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(connection: duckdb.DuckDBPyConnection) -> int:
    """Apply the migrations this database has not seen yet, inside the caller's transaction."""
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
    )
    current = schema_version(connection)
    if current > len(MIGRATIONS):
        from engine.errors import WorkbenchError

        raise WorkbenchError(
            f"this workspace has schema version {current}, newer than this workbench knows "
            f"({len(MIGRATIONS)}); upgrade workbench"
        )
    for version, (name, sql) in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        connection.execute(sql)
        connection.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
    return len(MIGRATIONS)
