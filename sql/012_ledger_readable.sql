-- The migration ledger, readable like the deployment's other records (seed manifest, flag
-- settings): the read-only operator reads as swipesavvy_analytics (swipesavvy_readonly) and
-- `pulumi refresh` reads the ledger through it. Still writable only by the deploying login.
GRANT SELECT ON swipesavvy_meta.schema_migrations TO swipesavvy_readwrite, swipesavvy_readonly;
