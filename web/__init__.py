"""Thin HTTP layer: gateway callbacks and, later, the admin."""
