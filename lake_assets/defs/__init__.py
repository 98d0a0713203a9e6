"""Definitions: instances only. Each layer module has `build(catalog, settings)`."""
