"""The wire double's own tests."""
