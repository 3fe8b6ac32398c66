"""Postgres: the embedded server for a new user, the shared pool, and ordered migrations."""
