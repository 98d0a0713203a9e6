"""The source catalog: YAML in, frozen pydantic models out, every error one line naming the entry.

Pydantic checks each entry's keys and value types; `_check` then checks what relates entries
(duplicates, references, key columns, name collisions). Either way a wrong catalog raises one
`CatalogError`: `<file>: source 'shop' table 'customers' silver: <what is wrong>`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from lake_assets.formats import BUILT_IN
from lake_assets.lib.valuesets import VALUE_SETS

FORMATS = tuple(BUILT_IN)  # and package.module:ClassName, a format of one's own
RULE_ACTIONS = ("warn", "drop", "fail")
DEFAULT_FRESHNESS_HOURS = 26.0
DEFAULT_VACUUM_RETENTION_HOURS = 7 * 24
_SIMPLE_TYPES = ("bigint", "int", "string", "double", "boolean", "date", "timestamp")
_ALIASES = {"long": "bigint", "integer": "int"}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(rf"^{_IDENT}$")
_USER_FORMAT = re.compile(rf"^{_IDENT}(\.{_IDENT})*:{_IDENT}$")
_SLOT = re.compile(r"^[a-z0-9_]{1,63}$")  # what PostgreSQL allows a replication slot
_POSTGRES_KEYS = ("dsn_env", "mode", "slot", "max_slot_lag_mb", "batch_size", "statement_timeout_s")
_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")  # the characters Kafka allows
# silver/<source>/<table>_quarantine (defs/silver/assets.quarantine_name) is a table too.
_QUARANTINE_SUFFIX = "_quarantine"
# bronze/<source>/<table>_history (CONTRACT.md, "History").
HISTORY_SUFFIX = "_history"
_BLANK = (None, "", [], {})


class CatalogError(ValueError):
    """The source catalog is wrong; the message names the file and the entry."""


def _problem(message: str) -> PydanticCustomError:
    # The message travels through pydantic as a template: pass it as a value so braces survive.
    return PydanticCustomError("catalog", "{problem}", {"problem": message})


def _suggest(word: str, known: Iterable[str], what: str) -> str:
    known = list(known)
    close = difflib.get_close_matches(word, known, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known {what}: {', '.join(known)}"


def _normalize(spark_type: Any) -> str:
    t = str(spark_type).strip().lower()
    t = _ALIASES.get(t, t)
    if t in _SIMPLE_TYPES:
        return t
    m = _DECIMAL.match(t)
    if not m:
        raise ValueError(
            f"unknown type {spark_type!r}; use one of {', '.join(_SIMPLE_TYPES)} or decimal(p,s)"
        )
    p, s = int(m.group(1)), int(m.group(2))
    if not (1 <= p <= 38 and 0 <= s <= p):
        raise ValueError(f"decimal({p},{s}) is out of range")
    return f"decimal({p},{s})"


def normalize_type(spark_type: str, where: str) -> str:
    try:
        return _normalize(spark_type)
    except ValueError as e:
        raise CatalogError(f"{where}: {e}") from None


def _check_format(name: str, where: str) -> str:
    """A built-in format, or a landing format of the user's own, named package.module:ClassName."""
    if name in FORMATS or _USER_FORMAT.match(name):
        return name
    raise CatalogError(
        f"{where}: unknown format {name!r}; {_suggest(name, FORMATS, 'formats')} "
        "(a format of your own is package.module:ClassName)"
    )


def _scalar_text(value: Any) -> Any:
    # YAML reads `expr: 1` or `accepted: [1, 2]` as numbers; they are SQL text all the same.
    return str(value) if isinstance(value, (bool, int, float)) else value


_Text = Annotated[str, BeforeValidator(_scalar_text)]


class _Entry(BaseModel):
    """An entry of the catalog: its keys are its fields' names (or aliases), and only those."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Keys whose blank value (null, "", [], {}) means "not given": their default, or "missing".
    _blank_is_absent: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        known = [f.alias or n for n, f in cls.model_fields.items()]
        for key in data:
            if key not in known:
                raise _problem(f"unknown key {key!r}; {_suggest(str(key), known, 'keys')}")
        data = {k: v for k, v in data.items() if k not in cls._blank_is_absent or v not in _BLANK}
        return cls._prepare(data, info)

    @classmethod
    def _prepare(cls, data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """What an entry checks or derives across its keys before they are validated."""
        return data

    @field_validator("primary_key", "lower", "upper", "gold", mode="before", check_fields=False)
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator(
        "name",
        "dms_schema",
        "primary_key",
        "lower",
        "upper",
        "timestamp_column",
        "column",
        "partitioned_by",
        check_fields=False,
    )
    @classmethod
    def _valid_names(cls, value: Any, info: ValidationInfo) -> Any:
        key = cls.model_fields[info.field_name].alias or info.field_name
        for name in value if isinstance(value, tuple) else (value,):
            if name is not None and not _NAME.match(name):
                raise _problem(f"{key} {name!r} is not a valid name (letters, digits, _)")
        return value


class _OfSource(_Entry):
    """An entry that belongs to a source: its asset keys and paths need the source's name."""

    _source: str = PrivateAttr("")

    @property
    def source(self) -> str:
        return self._source


class References(_Entry):
    """The target of a referential rule: the row's columns must match a key of another table."""

    table: str
    # (mine, theirs): `columns: [a]` matches the same name, `columns: {a: b}` maps a to b.
    columns: tuple[tuple[str, str], ...]

    @field_validator("columns", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, dict):
            return tuple(value.items())
        return tuple((c, c) for c in value) if isinstance(value, list) else value


class Rule(_Entry):
    """A data quality expectation on a silver table: a SQL boolean that good rows satisfy."""

    _blank_is_absent = frozenset({"name", "expr"})

    name: str
    expr: _Text = "true"
    action: str = "warn"
    # A referential rule: the row's columns must match a key of another table at the source (its
    # bronze). Stored as the YAML mapping; `references` gives it as (table, mine, theirs).
    refs: References | None = Field(None, alias="references")
    # An accepted-values rule: `column` must be one of `accepted` (a list, or a named set).
    column: str | None = None
    accepted: tuple[str, ...] = ()

    @property
    def references(self) -> tuple[str, tuple[str, ...], tuple[str, ...]] | None:
        if self.refs is None:
            return None
        mine, theirs = zip(*self.refs.columns) if self.refs.columns else ((), ())
        return self.refs.table, tuple(mine), tuple(theirs)

    @classmethod
    def _prepare(cls, data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # A rule is one kind: a key that another kind would need must not be silently ignored.
        if "references" in data and "accepted" in data:
            raise _problem("a rule has 'references' or 'accepted', not both")
        if "accepted" in data and "expr" in data:
            raise _problem("an accepted-values rule takes no 'expr'")
        if "accepted" in data and "column" not in data:
            raise _problem("missing 'column' (the column that 'accepted' applies to)")
        if "column" in data and "accepted" not in data:
            raise _problem("'column' needs 'accepted' (the values the column may take)")
        if not {"references", "accepted", "expr"} & data.keys():
            raise _problem("missing 'expr'")
        return data

    @field_validator("action")
    @classmethod
    def _known_action(cls, value: str) -> str:
        if value not in RULE_ACTIONS:
            raise _problem(f"unknown action {value!r}; use one of {', '.join(RULE_ACTIONS)}")
        return value

    @field_validator("accepted", mode="before")
    @classmethod
    def _value_set(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value not in VALUE_SETS:
                raise _problem(
                    f"unknown value set {value!r}; known: {', '.join(sorted(VALUE_SETS))}"
                )
            return VALUE_SETS[value]
        if not isinstance(value, list) or not value:
            raise _problem("accepted must be a non-empty list or a named value set")
        return tuple(str(a) for a in value)


class Silver(_Entry):
    """How silver standardizes and checks a table (its `silver:` mapping)."""

    _blank_is_absent = frozenset({"rules", "lower", "upper"})

    # Trim every string column; lower/upper-case these columns.
    trim_strings: StrictBool = False
    lower: tuple[str, ...] = ()
    upper: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    max_quarantine_rate: float = 0.05


class History(_Entry):
    """A table's history (`history: true` or `history: {except: [...]}`): the columns in `except`
    change in place and open no version (CONTRACT.md, "History")."""

    untracked: tuple[str, ...] = Field((), alias="except")

    @field_validator("untracked", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        value = [value] if isinstance(value, str) else value
        for name in value if isinstance(value, list) else ():
            if not isinstance(name, str) or not _NAME.match(name):
                raise _problem(f"except {name!r} is not a valid name (letters, digits, _)")
        return value


def _history(value: Any) -> Any:
    # `history: true` is history with every column tracked; false (or absent) is none.
    if value is True:
        return {}
    return None if value is False else value


class Table(_OfSource):
    _blank_is_absent = frozenset({"name", "schema", "primary_key", "columns", "silver"})

    name: str
    description: str | None = None
    # `schema` is a BaseModel attribute: the field is `dms_schema`, aliased to the YAML key
    # `schema`, and the property `schema` reads it.
    dms_schema: str = Field(alias="schema")
    primary_key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...] = ()
    # From `columns` entries written as {type: ..., description: ...}.
    column_descriptions: tuple[tuple[str, str], ...] = ()
    freshness_hours: float = Field(DEFAULT_FRESHNESS_HOURS, gt=0)
    silver: Silver = Silver()
    # format debezium: the Kafka topic of the table's change events (formats/debezium.py).
    topic: str | None = None
    history: Annotated[History | None, BeforeValidator(_history)] = None

    @classmethod
    def _prepare(cls, data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """`columns` values are a type, or {type, description}: split into the two fields."""
        columns = data.get("columns")
        if not isinstance(columns, dict):
            return data
        types, described = {}, []
        for name, spec in columns.items():
            if isinstance(spec, dict):
                unknown = [k for k in spec if k not in ("type", "description")]
                if unknown:
                    raise _problem(
                        f"column {name!r}: unknown key {unknown[0]!r}; "
                        f"{_suggest(str(unknown[0]), ['type', 'description'], 'keys')}"
                    )
                if "type" not in spec:
                    raise _problem(f"column {name!r}: missing 'type'")
                if spec.get("description"):
                    described.append((str(name), str(spec["description"])))
                spec = spec["type"]
            types[name] = spec
        return {**data, "columns": types, "column_descriptions": tuple(described)}

    @field_validator("columns", mode="before")
    @classmethod
    def _typed_columns(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise _problem("'columns' must map column names to types")
        columns = []
        for name, spark_type in value.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise _problem(f"column {name!r} is not a valid name (letters, digits, _)")
            try:
                columns.append((name, _normalize(spark_type)))
            except ValueError as e:
                raise _problem(f"column {name!r}: {e}") from None
        return tuple(columns)

    @field_validator("topic")
    @classmethod
    def _kafka_topic(cls, value: str | None) -> str | None:
        if value is not None and not _KAFKA_TOPIC.match(value):
            raise _problem(f"topic {value!r} is not a Kafka topic name (letters, digits, . _ -)")
        return value

    @property
    def schema(self) -> str:  # type: ignore[override]
        """The DMS schema folder."""
        return self.dms_schema

    @property
    def column_types(self) -> dict[str, str]:
        return dict(self.columns)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.silver.rules

    @property
    def max_quarantine_rate(self) -> float:
        return self.silver.max_quarantine_rate

    @property
    def trim_strings(self) -> bool:
        return self.silver.trim_strings

    @property
    def lower(self) -> tuple[str, ...]:
        return self.silver.lower

    @property
    def upper(self) -> tuple[str, ...]:
        return self.silver.upper


class _SqlEntry(_Entry):
    """An entry whose SQL is given inline (`sql`) or in a file beside the catalog (`sql_file`)."""

    sql: str = Field(min_length=1)
    # Where `sql` was read from (resolved against the catalog's folder), for messages; None when
    # the SQL is inline.
    sql_file: str | None = None

    @classmethod
    def _prepare(cls, data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        given = [k for k in ("sql", "sql_file") if k in data]
        if not given:
            raise _problem("missing 'sql' (or 'sql_file')")
        if len(given) > 1:
            raise _problem("give 'sql' or 'sql_file', not both")
        return {**data, **_read_sql(data["sql_file"], info)} if given == ["sql_file"] else data


class ModelCheck(_SqlEntry):
    """A check of a model: a query returning the failing rows; it passes when it returns none."""

    name: str
    description: str | None = None
    blocking: StrictBool = True


class Chart(_Entry):
    """A chart of a model's rows on each materialization: `y` against `x` (a date column)."""

    x: str
    y: tuple[str, ...]
    kind: Literal["bar", "line"] = "bar"

    @field_validator("y", mode="before")
    @classmethod
    def _one_or_many_y(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Model(_OfSource, _SqlEntry):
    """A table computed by Spark SQL from the lake's tables (CONTRACT.md, "SQL models")."""

    _blank_is_absent = frozenset({"name", "primary_key", "checks"})

    name: str
    layer: Literal["gold", "silver"] = "gold"
    description: str | None = None
    partitioned_by: str | None = None
    primary_key: tuple[str, ...] = ()
    checks: tuple[ModelCheck, ...] = ()
    # {column: description} of the SQL's result, shown with the table's columns in the UI.
    columns: tuple[tuple[str, str], ...] = ()
    chart: Chart | None = None

    @field_validator("columns", mode="before")
    @classmethod
    def _described_columns(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise _problem("'columns' must map column names to descriptions")
        return tuple((str(k), str(v)) for k, v in value.items())

    @property
    def column_descriptions(self) -> tuple[tuple[str, str], ...]:
        return self.columns


def _read_sql(relative: Any, info: ValidationInfo) -> dict[str, str]:
    if not isinstance(relative, str) or not relative:
        raise _problem(f"'sql_file' must be a path, not {relative!r}")
    path = Path((info.context or {}).get("folder", ".")) / relative
    try:
        return {"sql": path.read_text(encoding="utf-8"), "sql_file": str(path)}
    except (OSError, UnicodeDecodeError) as e:
        raise _problem(f"cannot read sql_file {str(path)!r}: {getattr(e, 'strerror', 0) or e}")


class Source(_Entry):
    _blank_is_absent = frozenset({"name", "format", "start_date", "tables", "gold", "models"})

    name: str
    format: str
    start_date: dt.date
    tables: tuple[Table, ...] = Field(min_length=1)
    timestamp_column: str | None = None
    csv_header: StrictBool = False
    gold: tuple[_Text, ...] = ()
    models: tuple[Model, ...] = ()
    # How long table maintenance keeps the files a table no longer uses (time travel and
    # running readers need them): VACUUM's retention, in hours.
    vacuum_retention_hours: int = Field(DEFAULT_VACUUM_RETENTION_HOURS, ge=0)
    # format postgres (lib/postgres.py): where to connect, how, and how gently.
    dsn_env: str | None = None
    mode: Literal["logical", "snapshot"] = "logical"
    slot: str | None = None
    max_slot_lag_mb: float = Field(1024, gt=0)
    batch_size: int = Field(10_000, gt=0, le=10_000_000)
    statement_timeout_s: float = Field(60, gt=0)

    @field_validator("dsn_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise _problem(f"dsn_env {value!r} is not an environment variable name")
        return value

    @field_validator("slot")
    @classmethod
    def _slot_name(cls, value: str | None) -> str | None:
        if value is not None and not _SLOT.match(value):
            raise _problem(
                f"slot {value!r} is not a replication slot name (a-z, 0-9, _; at most 63)"
            )
        return value

    @field_validator("start_date", mode="before")
    @classmethod
    def _date(cls, value: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise _problem(f"start_date {value!r} is not a date (YYYY-MM-DD)") from None

    @model_validator(mode="after")
    def _own_entries(self) -> Source:
        for entry in (*self.tables, *self.models):
            entry._source = self.name
        return self

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"source {self.name!r} has no table {name!r}")


class Catalog(_Entry):
    sources: tuple[Source, ...]
    # Not a YAML key: where the catalog was read from, for messages.
    _path: str = PrivateAttr("<catalog>")

    @property
    def path(self) -> str:
        return self._path

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(f"the catalog {self.path} has no source {name!r}")

    def tables(self) -> list[Table]:
        return [t for s in self.sources for t in s.tables]


# The keys whose list items are entries, and what to call an item; and the nested mappings.
_ENTRY_LISTS = {
    "sources": "source",
    "tables": "table",
    "rules": "rule",
    "models": "model",
    "checks": "check",
}
_SECTIONS = ("silver", "references", "chart", "history")
# Pydantic's wording where it is not the catalog's.
_PHRASES = {
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "model_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
}


def _entry(doc: Any, loc: tuple[Any, ...]) -> tuple[list[str], tuple[Any, ...]]:
    """The entries an error's location walks through ("source 'shop'", "silver"), and the rest."""
    names, node, i = [], doc, 0
    while i < len(loc):
        key, node = loc[i], node.get(loc[i]) if isinstance(node, dict) else None
        if key in _SECTIONS:
            names.append(key)
            i += 1
        elif key in _ENTRY_LISTS and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            n = loc[i + 1]
            node = node[n] if isinstance(node, list) and n < len(node) else None
            name = node.get("name") if isinstance(node, dict) else None
            names.append(
                f"{_ENTRY_LISTS[key]} {name!r}"
                if isinstance(name, str)
                else f"{_ENTRY_LISTS[key]} #{n + 1}"
            )
            i += 2
        else:
            break
    return names, loc[i:]


def _message(path: str, doc: Any, error: dict[str, Any]) -> str:
    names, rest = _entry(doc, error["loc"])
    where = f"{path}: {' '.join(names)}:" if names else f"{path}:"
    if error["type"] == "catalog":
        return f"{where} {error['msg']}"
    key = " item ".join(repr(p) if isinstance(p, str) else str(p + 1) for p in rest)
    if error["type"] == "missing":
        return f"{where} missing {key}"
    phrase = _PHRASES.get(error["type"]) or error["msg"].replace("Input should be", "must be")
    shown = repr(error["input"])
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{where} {key + ' ' if key else ''}{phrase}, not {shown}"


def _unique(names: Iterable[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise CatalogError(f"{where}: duplicate {what} {name!r}")
        seen.add(name)


def _check_table(source: Source, table: Table, where: str) -> None:
    # Unused, a topic would be silently ignored; a format of one's own may read it.
    if table.topic is not None and source.format in FORMATS and source.format != "debezium":
        raise CatalogError(f"{where}: 'topic' is for format debezium, not {source.format!r}")
    missing = [c for c in table.primary_key if c not in table.column_types]
    if table.columns and missing:
        raise CatalogError(f"{where}: primary key column(s) {missing} are not among its columns")
    _unique((r.name for r in table.rules), where, "rule")
    _check_history(source, table, where)
    names = {t.name for t in source.tables}
    for r in table.rules:
        if r.references and r.references[0] not in names:
            raise CatalogError(
                f"{where} silver rule {r.name!r}: references unknown table {r.references[0]!r}"
            )


def _check_history(source: Source, table: Table, where: str) -> None:
    if table.history is None:
        return
    keyed = [c for c in table.history.untracked if c in table.primary_key]
    if keyed:
        raise CatalogError(f"{where} history: except {keyed} are primary key columns")
    unknown = [c for c in table.history.untracked if c not in table.column_types]
    if table.columns and unknown:
        raise CatalogError(f"{where} history: except {unknown} are not among its columns")
    # bronze/<source>/<table>_history is a table of the bronze layer too.
    if any(t.name == table.name + HISTORY_SUFFIX for t in source.tables):
        raise CatalogError(
            f"{where}: its history would overwrite bronze/{source.name}/"
            f"{table.name}{HISTORY_SUFFIX}"
        )


def _check_model(source: Source, model: Model, where: str) -> None:
    _unique((c.name for c in model.checks), where, "check")
    if model.name in source.gold:
        raise CatalogError(f"{where}: the name is a built-in gold table (in the source's gold:)")
    # A silver model writes silver/<source>/<name>: it must not overwrite a table's silver.
    silver = {n for t in source.tables for n in (t.name, t.name + _QUARANTINE_SUFFIX)}
    if model.layer == "silver" and model.name in silver:
        raise CatalogError(
            f"{where}: as a silver model it would overwrite silver/{source.name}/{model.name}"
        )


def _check_postgres(source: Source, where: str) -> None:
    given = [k for k in _POSTGRES_KEYS if k in source.model_fields_set]
    if source.format != "postgres":
        if given and source.format in FORMATS:
            raise CatalogError(
                f"{where}: {given[0]!r} is for format postgres, not {source.format!r}"
            )
        return
    dms_only = [k for k in ("timestamp_column", "csv_header") if k in source.model_fields_set]
    if dms_only:
        raise CatalogError(f"{where}: {dms_only[0]!r} is not for format postgres")
    if not source.dsn_env:
        raise CatalogError(
            f"{where}: missing 'dsn_env' (the environment variable holding the connection string)"
        )
    if source.mode == "snapshot" and "slot" in given:
        raise CatalogError(f"{where}: 'slot' is for mode logical, not snapshot")


def _check(catalog: Catalog) -> None:
    """What relates entries to each other, which pydantic checks one entry at a time do not see."""
    _unique((s.name for s in catalog.sources), catalog.path, "source")
    for s in catalog.sources:
        where = f"{catalog.path}: source {s.name!r}"
        _check_format(s.format, where)
        if s.format == "fivetran" and s.timestamp_column is not None:
            # Fivetran's rows are ordered by _fivetran_synced: another column would be ignored.
            raise CatalogError(
                f"{where}: timestamp_column is for format dms; format fivetran orders rows by "
                "_fivetran_synced"
            )
        _check_postgres(s, where)
        _unique((t.name for t in s.tables), where, "table")
        _unique((m.name for m in s.models), where, "model")
        for t in s.tables:
            _check_table(s, t, f"{where} table {t.name!r}")
        for m in s.models:
            _check_model(s, m, f"{where} model {m.name!r}")


def parse_catalog(text: str, path: str = "<catalog>") -> Catalog:
    """The catalog in `text`; a model's `sql_file` is relative to the folder of `path`."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CatalogError(f"{path}: not readable YAML: {' '.join(str(e).split())}") from None
    if not isinstance(doc, dict):
        raise CatalogError(f"{path}: expected a mapping with a 'sources' list")
    try:
        catalog = Catalog.model_validate(doc, context={"folder": Path(path).parent})
    except ValidationError as e:
        raise CatalogError(_message(path, doc, e.errors()[0])) from None
    catalog._path = path
    _check(catalog)
    return catalog


def load_catalog(path: str) -> Catalog:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogError(f"cannot read the source catalog {path}: {e.strerror or e}") from None
    return parse_catalog(text, str(p))
