"""PostgreSQL: the system of record (schema, queries, the embedded server)."""
