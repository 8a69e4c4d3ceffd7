"""Use cases shared by the web layer and the workers: each takes a session; the caller commits."""
