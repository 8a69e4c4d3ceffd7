"""Background work on RQ: queue names and one module per job family."""
