"""formats.resolve: built-in names and `package.module:Class` names of formats of one's own."""

from __future__ import annotations

import pytest

from lake_assets import formats
from lake_assets.catalog import parse_catalog
from lake_assets.formats.dms import DmsFormat
from lake_assets_tests.formats.jsonl_format import NAME, JsonLinesFormat

SRC = parse_catalog("""
sources:
  - name: s
    format: dms
    start_date: "2024-01-01"
    tables: [{name: t, schema: public, primary_key: [id]}]
""").sources[0]


def _as(fmt: str):
    return SRC.model_copy(update={"format": fmt})


def test_built_in_and_own_formats_resolve_to_one_instance_each():
    assert isinstance(formats.resolve(SRC), DmsFormat)
    assert isinstance(formats.resolve(_as(NAME)), JsonLinesFormat)
    assert formats.resolve(_as(NAME)) is formats.resolve(_as(NAME))


def test_a_catalog_accepts_a_format_named_by_module_and_class():
    text = f"""
sources:
  - name: s
    format: "{NAME}"
    start_date: "2024-01-01"
    tables: [{{name: t, schema: public, primary_key: [id]}}]
"""
    assert parse_catalog(text).sources[0].format == NAME


@pytest.mark.parametrize(
    "name, words",
    [
        ("avro", "unknown format 'avro'"),
        ("lake_assets_tests.nowhere:Fmt", "cannot be imported"),
        ("lake_assets_tests.formats.jsonl_format:Nope", "cannot be imported"),
        ("lake_assets.catalog:Source", "not a LandingFormat"),
    ],
)
def test_an_unknown_format_is_a_typed_error_naming_it(name, words):
    with pytest.raises(formats.UnknownFormatError, match=words):
        formats.resolve(_as(name))
