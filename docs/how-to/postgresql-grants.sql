-- Run as carecollect_owner in the database (psql -d billing -f postgresql-grants.sql),
-- before or after `carecollect migrate`: the default privileges cover every table a later
-- migration adds, so upgrading never needs a new grant.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO carecollect_run;
-- rows only: the run reads, inserts, updates (outbox, run lock) and deletes (a patient's
-- replaced contact points, the released run lock); it can create, alter or drop nothing
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO carecollect_run;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO carecollect_run;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO carecollect_run;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO carecollect_run;
