"""What every layer's asset definitions say of a catalog entry: its description, first."""

from lake_assets.resources.io_manager import COLUMN_DESCRIPTIONS


def describe(entry, grain: str) -> str:
    """The entry's own description (the catalog's), then what the layer makes of it."""
    own = (getattr(entry, "description", None) or "").strip()
    return f"{own}\n\n{grain}" if own else grain


def column_metadata(entry) -> dict:
    """Definition metadata carrying the catalog's column descriptions to the IO manager."""
    described = dict(entry.column_descriptions)
    return {COLUMN_DESCRIPTIONS: described} if described else {}
