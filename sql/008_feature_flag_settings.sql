-- What the deployment set each feature flag to (stack config swipesavvy:featureFlags),
-- so `python -m ops verify` can tell a flag the stack configured from one changed behind
-- its back. ops.flags.apply_flag_settings writes a row per configured flag in the same
-- transaction as the flag itself; verify expects, per flag, the state migration 003 seeded
-- overlaid with the row here. The applications may read it, never write it (only the
-- owner, i.e. the deploying login, does): otherwise they could bless their own changes.

CREATE TABLE swipesavvy_meta.feature_flag_settings (
    key                 text        PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{1,62}$'),
    enabled             boolean     NOT NULL,
    rollout_percentage  smallint    NOT NULL CHECK (rollout_percentage BETWEEN 0 AND 100),
    actor               text        NOT NULL,  -- the label the deployment gave, e.g. pulumi:staging
    applied_by          text        NOT NULL DEFAULT session_user,  -- the login that applied it
    applied_at          timestamptz NOT NULL DEFAULT now() CHECK (applied_at <= now())
);

GRANT SELECT ON swipesavvy_meta.feature_flag_settings TO swipesavvy_readwrite, swipesavvy_readonly;
