-- The mock-data seeder's manifest (runbook phase 2): at most one row, describing the data
-- set that is loaded right now. seed.loader writes it in the same transaction as the rows
-- and deletes it with them, so "a manifest exists" means "exactly this data is loaded".
-- It lives in swipesavvy_meta so public keeps exactly the 16 tables the runbook counts.

CREATE TABLE swipesavvy_meta.mock_data_seed (
    singleton          boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    scale              double precision NOT NULL CHECK (scale >= 0.01 AND scale <= 100),
    rng_seed           bigint      NOT NULL CHECK (rng_seed >= 0),
    anchor_date        date        NOT NULL,
    dataset_version    integer     NOT NULL CHECK (dataset_version >= 1),
    generator_version  integer     NOT NULL CHECK (generator_version >= 1),
    counts             jsonb       NOT NULL CHECK (jsonb_typeof(counts) = 'object'),
    checksum           text        NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    duration_ms        numeric(12, 3) NOT NULL CHECK (duration_ms >= 0),
    loaded_at          timestamptz NOT NULL DEFAULT now() CHECK (loaded_at <= now()),
    loaded_by          text        NOT NULL DEFAULT session_user
);

-- The application role runs the seeder (runbook step 2.1 logs in as the backend user);
-- the read-only role may read the manifest for `python -m ops verify`. Neither sees the
-- migration ledger: USAGE on the schema grants nothing on its other tables.
GRANT USAGE ON SCHEMA swipesavvy_meta TO swipesavvy_readwrite, swipesavvy_readonly;
GRANT SELECT, INSERT, DELETE ON swipesavvy_meta.mock_data_seed TO swipesavvy_readwrite;
GRANT SELECT ON swipesavvy_meta.mock_data_seed TO swipesavvy_readonly;
