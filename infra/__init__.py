"""Below every layer: crypto, the Redis connection, its key names, the spool, health probes; imports none of ours."""
