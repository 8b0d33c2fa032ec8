-- What the application login (swipesavvy_readwrite) may not change, and an audit log that
-- names the real login.
--
-- * The seed manifest is the deployment's record of the mock data: only the deploying
--   login (member of swipesavvy_owner, as `pulumi up` and `python -m ops db seed` connect)
--   seeds and unseeds. The applications keep SELECT. (The migration ledger never had a
--   grant to them; tests/test_application_limits.py holds both to that.)
-- * Feature flags: the application may create flags and change their state (verify reports
--   any state the stack did not set), but may delete none of them, the ten seeded ones
--   included: the runbook's API toggles and sets rollouts, it never deletes; a flag is
--   retired by switching it off, and removed, if ever, by a migration.
-- * feature_flag_audit_log.session_login is session_user, which a session cannot change.
--   changed_by stays what swipesavvy.actor claims: a label next to the login, never
--   instead of it. Without an actor an update's changed_by is now the login rather than
--   the row's updated_by, which a writer need not touch (it stays in new_value). Entries
--   written before this migration have no login (NULL).

REVOKE INSERT, UPDATE, DELETE ON swipesavvy_meta.mock_data_seed FROM swipesavvy_readwrite;

REVOKE DELETE ON feature_flags FROM swipesavvy_readwrite;

ALTER TABLE feature_flag_audit_log ADD COLUMN session_login text;
ALTER TABLE feature_flag_audit_log
    ADD CONSTRAINT feature_flag_audit_log_session_login_check CHECK (session_login IS NOT NULL) NOT VALID;

CREATE OR REPLACE FUNCTION audit_feature_flag_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS
$$
DECLARE
    actor  text := nullif(current_setting('swipesavvy.actor', true), '');
    reason text := nullif(current_setting('swipesavvy.change_reason', true), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO feature_flag_audit_log
            (flag_id, flag_key, action, new_value, changed_by, session_login, reason, source_ip)
        VALUES (NEW.id, NEW.key, 'CREATE', to_jsonb(NEW), coalesce(actor, NEW.created_by), session_user, reason,
                inet_client_addr());
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF to_jsonb(OLD) - 'updated_at' - 'updated_by' = to_jsonb(NEW) - 'updated_at' - 'updated_by' THEN
            RETURN NEW;  -- nothing a reader would call a change
        END IF;
        INSERT INTO feature_flag_audit_log
            (flag_id, flag_key, action, old_value, new_value, changed_by, session_login, reason, source_ip)
        VALUES (NEW.id, NEW.key,
                CASE WHEN (to_jsonb(OLD) - 'enabled' - 'updated_at' - 'updated_by')
                        = (to_jsonb(NEW) - 'enabled' - 'updated_at' - 'updated_by')
                     THEN 'TOGGLE' ELSE 'UPDATE' END,
                to_jsonb(OLD), to_jsonb(NEW), coalesce(actor, session_user), session_user, reason,
                inet_client_addr());
        RETURN NEW;
    ELSE
        INSERT INTO feature_flag_audit_log
            (flag_id, flag_key, action, old_value, changed_by, session_login, reason, source_ip)
        VALUES (OLD.id, OLD.key, 'DELETE', to_jsonb(OLD), coalesce(actor, session_user), session_user, reason,
                inet_client_addr());
        RETURN OLD;
    END IF;
END
$$;
