"""Background work on RQ: queue names, the Redis connection, and one module per job family."""
