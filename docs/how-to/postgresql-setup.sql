-- Run once as a superuser (psql -f postgresql-setup.sql): two roles and the database.
-- carecollect_owner owns the schema and runs `carecollect migrate`;
-- carecollect_run is what the daily run, the importers and the web pages connect as.
CREATE ROLE carecollect_owner LOGIN;
CREATE ROLE carecollect_run LOGIN;
CREATE DATABASE billing OWNER carecollect_owner ENCODING 'UTF8' TEMPLATE template0;
