"""The source catalog: YAML in, frozen dataclasses out, with errors that name the entry at fault."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lake_assets.formats import BUILT_IN

FORMATS = tuple(BUILT_IN)  # and package.module:ClassName, a format of one's own
RULE_ACTIONS = ("warn", "drop", "fail")
DEFAULT_FRESHNESS_HOURS = 26.0
_SIMPLE_TYPES = ("bigint", "int", "string", "double", "boolean", "date", "timestamp")
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CatalogError(ValueError):
    """The source catalog is wrong; the message names the file and the entry."""


def normalize_type(spark_type: str, where: str) -> str:
    t = str(spark_type).strip().lower()
    if t in ("long",):
        t = "bigint"
    if t in ("integer",):
        t = "int"
    if t in _SIMPLE_TYPES:
        return t
    m = _DECIMAL.match(t)
    if m:
        p, s = int(m.group(1)), int(m.group(2))
        if not (1 <= p <= 38 and 0 <= s <= p):
            raise CatalogError(f"{where}: decimal({p},{s}) is out of range")
        return f"decimal({p},{s})"
    raise CatalogError(
        f"{where}: unknown type {spark_type!r}; use one of {', '.join(_SIMPLE_TYPES)} or decimal(p,s)"
    )


@dataclass(frozen=True)
class Rule:
    """A data quality expectation on a silver table: a SQL boolean that good rows satisfy."""

    name: str
    expr: str
    action: str = "warn"
    # A referential rule: the row's columns must match a key of another table at the source (its bronze).
    references: tuple[str, tuple[str, ...], tuple[str, ...]] | None = None
    # An accepted-values rule: `column` must be one of `accepted` (a list, or a named set).
    column: str | None = None
    accepted: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    source: str
    name: str
    schema: str
    primary_key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...] = ()
    freshness_hours: float = DEFAULT_FRESHNESS_HOURS
    rules: tuple[Rule, ...] = ()
    max_quarantine_rate: float = 0.05
    # Silver standardization: trim every string column; lower/upper-case these columns.
    trim_strings: bool = False
    lower: tuple[str, ...] = ()
    upper: tuple[str, ...] = ()

    @property
    def column_types(self) -> dict[str, str]:
        return dict(self.columns)


@dataclass(frozen=True)
class Source:
    name: str
    format: str
    start_date: dt.date
    tables: tuple[Table, ...]
    timestamp_column: str | None = None
    csv_header: bool = False
    gold: tuple[str, ...] = ()

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"source {self.name!r} has no table {name!r}")


@dataclass(frozen=True)
class Catalog:
    path: str
    sources: tuple[Source, ...] = field(default_factory=tuple)

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(f"the catalog {self.path} has no source {name!r}")

    def tables(self) -> list[Table]:
        return [t for s in self.sources for t in s.tables]


def _require(entry: dict[str, Any], key: str, where: str) -> Any:
    if key not in entry or entry[key] in (None, "", []):
        raise CatalogError(f"{where}: missing {key!r}")
    return entry[key]


def _name(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise CatalogError(f"{where}: {what} {value!r} is not a valid name (letters, digits, _)")
    return value


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: a rule must be a mapping with name, expr and action")
    name = _name(_require(raw, "name", where), where, "rule name")
    where = f"{where} rule {name!r}"
    action = str(raw.get("action", "warn"))
    if action not in RULE_ACTIONS:
        raise CatalogError(f"{where}: unknown action {action!r}; use one of {', '.join(RULE_ACTIONS)}")
    refs = None
    if "references" in raw:
        r = raw["references"]
        if not isinstance(r, dict) or "table" not in r or "columns" not in r:
            raise CatalogError(f"{where}: references needs table and columns")
        cols = r["columns"]
        if isinstance(cols, dict):
            mine, theirs = tuple(cols.keys()), tuple(cols.values())
        else:
            mine = theirs = tuple(cols)
        refs = (str(r["table"]), tuple(mine), tuple(theirs))
        expr = str(raw.get("expr", "true"))
    elif "accepted" in raw:
        column = _name(_require(raw, "column", where), where, "column")
        acc = raw["accepted"]
        if isinstance(acc, str):
            from lake_assets.lib.valuesets import VALUE_SETS

            if acc not in VALUE_SETS:
                raise CatalogError(f"{where}: unknown value set {acc!r}; known: {', '.join(sorted(VALUE_SETS))}")
            acc = VALUE_SETS[acc]
        if not isinstance(acc, (list, tuple)) or not acc:
            raise CatalogError(f"{where}: accepted must be a non-empty list or a named value set")
        return Rule(name=name, expr="true", action=action, column=column, accepted=tuple(str(a) for a in acc))
    else:
        expr = str(_require(raw, "expr", where))
    return Rule(name=name, expr=expr, action=action, references=refs)


def _table(raw: Any, source: str, index: int, where_file: str) -> Table:
    where = f"{where_file}: source {source!r} table #{index + 1}"
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: a table must be a mapping")
    name = _name(_require(raw, "name", where), where, "table name")
    where = f"{where_file}: source {source!r} table {name!r}"
    schema = _name(_require(raw, "schema", where), where, "schema")
    pk = raw.get("primary_key")
    if isinstance(pk, str):
        pk = [pk]
    if not pk or not isinstance(pk, list):
        raise CatalogError(f"{where}: missing 'primary_key' (a list of column names)")
    pk = tuple(_name(c, where, "primary key column") for c in pk)
    cols_raw = raw.get("columns") or {}
    if not isinstance(cols_raw, dict):
        raise CatalogError(f"{where}: 'columns' must map column names to types")
    columns = tuple(
        (_name(c, where, "column"), normalize_type(t, f"{where} column {c!r}")) for c, t in cols_raw.items()
    )
    if columns:
        missing = [c for c in pk if c not in dict(columns)]
        if missing:
            raise CatalogError(f"{where}: primary key column(s) {missing} are not among its columns")
    silver = raw.get("silver") or {}
    rules = tuple(_rule(r, where) for r in (silver.get("rules") or []))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise CatalogError(f"{where}: duplicate rule names {sorted({n for n in names if names.count(n) > 1})}")
    try:
        freshness = float(raw.get("freshness_hours", DEFAULT_FRESHNESS_HOURS))
        max_q = float(silver.get("max_quarantine_rate", 0.05))
    except (TypeError, ValueError) as e:
        raise CatalogError(f"{where}: freshness_hours and max_quarantine_rate must be numbers ({e})") from None
    if freshness <= 0:
        raise CatalogError(f"{where}: freshness_hours must be positive")
    if not isinstance(silver, dict):
        raise CatalogError(f"{where}: 'silver' must be a mapping")
    trim = silver.get("trim_strings", False)
    if not isinstance(trim, bool):
        raise CatalogError(f"{where}: silver.trim_strings must be true or false")
    lower = tuple(_name(c, where, "silver.lower column") for c in (silver.get("lower") or []))
    upper = tuple(_name(c, where, "silver.upper column") for c in (silver.get("upper") or []))
    return Table(
        trim_strings=trim,
        lower=lower,
        upper=upper,
        source=source,
        name=name,
        schema=schema,
        primary_key=pk,
        columns=columns,
        freshness_hours=freshness,
        rules=rules,
        max_quarantine_rate=max_q,
    )


def _source(raw: Any, index: int, where_file: str) -> Source:
    where = f"{where_file}: source #{index + 1}"
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: a source must be a mapping")
    name = _name(_require(raw, "name", where), where, "source name")
    where = f"{where_file}: source {name!r}"
    fmt = _require(raw, "format", where)
    if fmt not in FORMATS and ":" not in str(fmt):
        raise CatalogError(f"{where}: unknown format {fmt!r}; supported: {', '.join(FORMATS)}")
    start = _require(raw, "start_date", where)
    try:
        start_date = start if isinstance(start, dt.date) else dt.date.fromisoformat(str(start))
    except ValueError:
        raise CatalogError(f"{where}: start_date {start!r} is not a date (YYYY-MM-DD)") from None
    ts = raw.get("timestamp_column")
    if ts is not None:
        ts = _name(ts, where, "timestamp_column")
    header = raw.get("csv_header", False)
    if not isinstance(header, bool):
        raise CatalogError(f"{where}: csv_header must be true or false")
    tables_raw = raw.get("tables")
    if not isinstance(tables_raw, list) or not tables_raw:
        raise CatalogError(f"{where}: missing 'tables' (a list)")
    tables = tuple(_table(t, name, i, where_file) for i, t in enumerate(tables_raw))
    seen: set[str] = set()
    for t in tables:
        if t.name in seen:
            raise CatalogError(f"{where}: duplicate table {t.name!r}")
        seen.add(t.name)
    gold = tuple(str(g) for g in (raw.get("gold") or []))
    return Source(
        name=name,
        format=fmt,
        start_date=start_date,
        tables=tables,
        timestamp_column=ts,
        csv_header=header,
        gold=gold,
    )


def parse_catalog(text: str, path: str = "<catalog>") -> Catalog:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CatalogError(f"{path}: not readable YAML: {' '.join(str(e).split())}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("sources"), list):
        raise CatalogError(f"{path}: expected a mapping with a 'sources' list")
    sources = tuple(_source(s, i, path) for i, s in enumerate(doc["sources"]))
    seen: set[str] = set()
    for s in sources:
        if s.name in seen:
            raise CatalogError(f"{path}: duplicate source {s.name!r}")
        seen.add(s.name)
    for s in sources:
        for t in s.tables:
            for r in t.rules:
                if r.references and r.references[0] not in {x.name for x in s.tables}:
                    raise CatalogError(
                        f"{path}: source {s.name!r} table {t.name!r} rule {r.name!r} references "
                        f"unknown table {r.references[0]!r}"
                    )
    return Catalog(path=path, sources=sources)


def load_catalog(path: str) -> Catalog:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogError(f"cannot read the source catalog {path}: {e.strerror or e}") from None
    return parse_catalog(text, str(p))
