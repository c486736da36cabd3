"""The integration suite: one suite, parametrized over the MongoDB backends."""
