"""Tests of the built-in handlers, with pages rendered at test time."""
