"""Landing formats by the catalog's `format` name: a built-in name, or `package.module:Class`
naming a format of one's own (a LandingFormat subclass), imported when first resolved."""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from lake_assets.formats.base import FileChanges, LandedFile, LandedFileError, LandingFormat

if TYPE_CHECKING:
    from lake_assets.catalog import Source

__all__ = [
    "BUILT_IN",
    "FileChanges",
    "LandedFile",
    "LandedFileError",
    "LandingFormat",
    "UnknownFormatError",
    "resolve",
]

# A later format is one module here and one line below; nothing else changes.
BUILT_IN = {
    "dms": "lake_assets.formats.dms:DmsFormat",
    "debezium": "lake_assets.formats.debezium:DebeziumFormat",
    "fivetran": "lake_assets.formats.fivetran:FivetranFormat",
    "snapshot": "lake_assets.formats.snapshot:SnapshotFormat",
    "postgres": "lake_assets.formats.postgres:PostgresFormat",
}


class UnknownFormatError(LookupError):
    """The catalog names a format that is neither built in nor an importable LandingFormat."""


def resolve(source: Source) -> LandingFormat:
    return by_name(source.format)


@cache
def by_name(name: str) -> LandingFormat:
    target = BUILT_IN.get(name, name)
    module_name, sep, class_name = target.partition(":")
    if not sep:
        raise UnknownFormatError(
            f"unknown format {name!r}: built in are {', '.join(BUILT_IN)}, "
            f"or name a class of your own as package.module:ClassName"
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise UnknownFormatError(f"format {name!r} cannot be imported: {e}") from None
    if not (isinstance(cls, type) and issubclass(cls, LandingFormat)):
        raise UnknownFormatError(f"format {name!r} is not a LandingFormat subclass")
    return cls()
