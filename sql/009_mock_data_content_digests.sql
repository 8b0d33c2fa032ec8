-- The manifest records a sha256 per table of the seeded rows as the database stores them
-- (seed.loader.content_digests: the seeded columns of every row as text, sorted), written
-- by the seeder right after loading. `python -m ops verify` recomputes them to catch a
-- changed, added or removed mock row, and a plain `db seed` reloads when they differ.
-- NULL on manifests written before this migration: both treat those as unverified.

ALTER TABLE swipesavvy_meta.mock_data_seed
    ADD COLUMN content_digests jsonb CHECK (jsonb_typeof(content_digests) = 'object');
