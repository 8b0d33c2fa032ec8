-- Whatever swipesavvy_owner creates in public from now on follows the two groups'
-- contracts without a GRANT per table: readwrite gets DML (no DDL, no TRUNCATE),
-- readonly gets SELECT only. Functions are not executable by PUBLIC by default.

ALTER DEFAULT PRIVILEGES FOR ROLE swipesavvy_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO swipesavvy_readwrite;
ALTER DEFAULT PRIVILEGES FOR ROLE swipesavvy_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO swipesavvy_readwrite;
ALTER DEFAULT PRIVILEGES FOR ROLE swipesavvy_owner IN SCHEMA public
    GRANT SELECT ON TABLES TO swipesavvy_readonly;
ALTER DEFAULT PRIVILEGES FOR ROLE swipesavvy_owner IN SCHEMA reporting
    GRANT SELECT ON TABLES TO swipesavvy_readwrite, swipesavvy_readonly;
ALTER DEFAULT PRIVILEGES FOR ROLE swipesavvy_owner
    REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Shared trigger function: every table with updated_at keeps it current.
CREATE FUNCTION set_updated_at() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
