-- Runs once, when the postgres container starts on an empty data directory (/docker-entrypoint-initdb.d).
-- Creates the exchange database and the four service schemas. Each service owns exactly one schema and
-- creates its own tables through its migrations (they also `CREATE SCHEMA IF NOT EXISTS`).
SELECT 'CREATE DATABASE exchange'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'exchange')\gexec

\connect exchange
CREATE SCHEMA IF NOT EXISTS auth;
CREATE SCHEMA IF NOT EXISTS wallet;
CREATE SCHEMA IF NOT EXISTS orders;
CREATE SCHEMA IF NOT EXISTS payment;
-- Nothing lives in public; no one may create objects there.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
