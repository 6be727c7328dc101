-- First start of the PostgreSQL volume: one database per service (each runs its own
-- Alembic migrations on start).
CREATE DATABASE parley_auth OWNER parley;
CREATE DATABASE parley_history OWNER parley;
