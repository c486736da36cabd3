"""Unit tests and their helpers (``pool_tasks``, ``pool_support``, handler modules)."""
