"""SQL models: tables computed by Spark SQL from the lake's own tables (Dagster-free).

A model's SQL names lake tables as `{{ layer.table }}` (same source) or
`{{ layer.source.table }}` (another source); `{{ gold.model }}` is another model. Before
the SQL runs, each reference becomes a temporary view of that Delta table, so the same
statement runs on every engine. The references are also the model's dependencies.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from lake_assets.catalog import Catalog, CatalogError, Source, load_catalog
from lake_assets.lib.layout import table_path

LAYERS = ("raw", "bronze", "silver", "gold")
_REF = re.compile(r"\{\{\s*([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?(?:\.([A-Za-z_]\w*))?\s*\}\}")
# Checks may also name the model itself and the dates the run covers.
CHECK_VARS = ("this", "first_date", "last_date")


@dataclass(frozen=True)
class Ref:
    """A lake table a model reads: the asset [layer, source, table]."""

    layer: str
    source: str
    table: str

    @property
    def view(self) -> str:
        # One name per table, whatever the spelling of the reference: `silver.orders` and
        # `silver.shop.orders` in one statement read one view.
        return f"__lake_{self.layer}__{self.source}__{self.table}"


class ModelError(CatalogError):
    """A model's SQL cannot be used; the message names the catalog, the source and the model."""


def where(model, catalog_path: str) -> str:
    return f"{catalog_path}: source {model.source!r} model {model.name!r}"


def refs_in(sql: str, source: str, allowed_vars: Iterable[str] = ()) -> list[Ref]:
    """The lake tables `sql` references, in order of first mention (template variables aside)."""
    out: list[Ref] = []
    for m in _REF.finditer(sql):
        parts = [p for p in m.groups() if p]
        if len(parts) == 1 and parts[0] in allowed_vars:
            continue
        if len(parts) == 1 or parts[0] not in LAYERS:
            raise ValueError(
                f"{{{{ {'.'.join(parts)} }}}} is not a lake table: write "
                "{{ layer.table }} or {{ layer.source.table }} (layer: raw, bronze, silver, gold)"
            )
        ref = Ref(parts[0], source, parts[1]) if len(parts) == 2 else Ref(*parts)
        if ref not in out:
            out.append(ref)
    return out


def render(sql: str, source: str, variables: dict[str, str] | None = None) -> str:
    """`sql` with each reference replaced by its view's name and each variable by its value."""
    variables = variables or {}

    def sub(m: re.Match) -> str:
        parts = [p for p in m.groups() if p]
        if len(parts) == 1 and parts[0] in variables:
            return variables[parts[0]]
        return refs_in(m.group(0), source, variables)[0].view

    return _REF.sub(sub, sql)


# -- which models a source has ---------------------------------------------------------------


@lru_cache(maxsize=1)
def builtin_gold() -> dict[str, object]:
    """The gold models a catalog can name in `gold:`: those of the packaged demo catalog."""
    from lake_assets.settings import packaged_catalog

    return {m.name: m for s in load_catalog(packaged_catalog()).sources for m in s.models}


def models_of(source: Source) -> list:
    """The source's models: its `models:`, then the built-in gold tables its `gold:` names."""
    out = list(source.models)
    known = builtin_gold()
    for name in source.gold:
        if name not in known:
            raise CatalogError(
                f"source {source.name!r}: unknown gold table {name!r}; "
                f"built in: {', '.join(sorted(known))} (or declare it under models:)"
            )
        out.append(known[name].model_copy(update={"source": source.name}))
    return out


def all_models(catalog: Catalog) -> list:
    return [m for s in catalog.sources for m in models_of(s)]


# -- validation at load ----------------------------------------------------------------------


def _tables_of(catalog: Catalog) -> set[Ref]:
    """Every table a model may read: each catalog table's four layers, quarantines, models."""
    out: set[Ref] = set()
    for s in catalog.sources:
        for t in s.tables:
            out |= {Ref(layer, s.name, t.name) for layer in LAYERS if layer != "gold"}
            out.add(Ref("silver", s.name, f"{t.name}_quarantine"))
            if t.history:
                out |= {Ref(layer, s.name, f"{t.name}_history") for layer in ("bronze", "silver")}
        out |= {Ref(m.layer, s.name, m.name) for m in models_of(s)}
    return out


def validate(catalog: Catalog) -> None:
    """Every model's SQL parses and names only lake tables that exist; else a ModelError."""
    for source in catalog.sources:
        try:
            models_of(source)
        except CatalogError as e:
            raise CatalogError(f"{catalog.path}: {e}") from None
    known = _tables_of(catalog)
    for source in catalog.sources:
        taken = {f"{t.name}_quarantine" for t in source.tables}
        taken |= {f"{t.name}_history" for t in source.tables if t.history}
        for model in models_of(source):
            at = where(model, catalog.path)
            if model.layer == "silver" and model.name in taken:
                raise ModelError(
                    f"{at}: silver/{source.name}/{model.name} is a quarantine or history table; "
                    "name the model otherwise"
                )
            deps = _checked_refs(model.sql, model, known, at)
            if Ref(model.layer, model.source, model.name) in deps:
                raise ModelError(
                    f"{at}: the model reads itself ({{{{ {model.layer}.{model.name} }}}})"
                )
            _parse(model.sql, model.source, deps, at, {})
            for check in model.checks:
                check_at = f"{at} check {check.name!r}"
                check_refs = _checked_refs(
                    check.sql,
                    model,
                    known | {Ref(model.layer, model.source, model.name)},
                    check_at,
                    CHECK_VARS,
                )
                _parse(
                    check.sql,
                    model.source,
                    check_refs,
                    check_at,
                    check_variables(model, dt.date.min, dt.date.min),
                )


def _checked_refs(
    sql: str, model, known: set[Ref], at: str, allowed_vars: Iterable[str] = ()
) -> list[Ref]:
    try:
        deps = refs_in(sql, model.source, allowed_vars)
    except ValueError as e:
        raise ModelError(f"{at}: {e}") from None
    for ref in deps:
        if ref not in known:
            raise ModelError(
                f"{at}: {{{{ {ref.layer}.{ref.source}.{ref.table} }}}} names no table of the lake"
            )
    return deps


def _parse(sql: str, source: str, deps: list[Ref], at: str, variables: dict[str, str]) -> None:
    """Spark SQL syntax, and no table named other than through a reference (or a CTE)."""
    import sqlglot
    from sqlglot import exp

    text = render(sql, source, variables)
    try:
        tree = sqlglot.parse_one(text, read="spark")
    except sqlglot.errors.ParseError as e:
        detail = " ".join(str(e).split())
        raise ModelError(f"{at}: the SQL does not parse: {detail[:300]}") from None
    if not isinstance(tree, exp.Query):
        raise ModelError(f"{at}: the SQL must be one query (SELECT or WITH ... SELECT)")
    views = {r.view for r in deps} | set(variables.values())
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    for t in tree.find_all(exp.Table):
        if t.name and t.name not in views and t.name not in ctes:
            raise ModelError(
                f"{at}: the SQL names table {t.sql('spark')!r}, which is not a lake "
                "table reference: write {{ layer.table }} (e.g. {{ silver.orders }})"
            )


def check_variables(
    model, first: dt.date, last: dt.date, this_view: str | None = None
) -> dict[str, str]:
    """Values of a check's variables: the dates the run covers, and the model's own table."""
    own = this_view or Ref(model.layer, model.source, model.name).view
    return {
        "first_date": f"DATE'{first.isoformat()}'",
        "last_date": f"DATE'{last.isoformat()}'",
        "this": own,
    }


# -- running ---------------------------------------------------------------------------------


def bind(
    spark,
    lake_root: str,
    sql: str,
    source: str,
    variables: dict[str, str] | None = None,
    allowed_vars: Iterable[str] = (),
) -> str:
    """Register a view of each table `sql` references and return the SQL that reads them.

    Raises MissingInput naming the first referenced table that has no Delta table yet."""
    from lake_assets.lib import delta

    for ref in refs_in(sql, source, set(allowed_vars) | set(variables or {})):
        path = table_path(lake_root, ref.layer, ref.source, ref.table)
        if not delta.exists(path):
            raise MissingInput(f"{ref.layer}/{ref.source}/{ref.table}")
        delta.read(spark, path).createOrReplaceTempView(ref.view)
    return render(sql, source, variables)


class MissingInput(LookupError):
    """A table a model reads has not been written yet (nothing has landed for it)."""


def inputs(model, lake_root: str) -> list[str]:
    """The Delta paths a model reads (for its fingerprint)."""
    return [
        table_path(lake_root, r.layer, r.source, r.table) for r in refs_in(model.sql, model.source)
    ]


def frame(spark, lake_root: str, model, first: dt.date | None = None, last: dt.date | None = None):
    """The model's rows (those of the dates first..last for a partitioned model)."""
    df = spark.sql(bind(spark, lake_root, model.sql, model.source))
    if model.partitioned_by and model.partitioned_by not in df.columns:
        raise ModelError(
            f"model {model.source}.{model.name}: partitioned_by {model.partitioned_by!r} "
            f"is not a column of its SQL's result ({', '.join(df.columns)})"
        )
    if model.partitioned_by and first is not None:
        col = f"`{model.partitioned_by}`"
        df = df.where(f"{col} >= DATE'{first.isoformat()}' AND {col} <= DATE'{last.isoformat()}'")
    return df


def touched_dates(spark, lake_root: str, model, start: dt.date, end: dt.date) -> list[dt.date]:
    """The dates of a partitioned model whose rows would change if it were recomputed now:
    per date, the row count and two order-independent hashes of the rows, fresh against the
    table (a date whose rows vanish counts too). [] while an input has no table yet."""
    from lake_assets.lib import delta

    try:
        fresh = frame(spark, lake_root, model)
    except MissingInput:
        return []
    path = table_path(lake_root, model.layer, model.source, model.name)
    d = f"`{model.partitioned_by}`"
    fresh.createOrReplaceTempView("__lake_fresh")
    if not delta.exists(path):
        rows = spark.sql(f"SELECT DISTINCT {d} FROM __lake_fresh").collect()
    else:
        current = delta.read(spark, path)
        cols = [c for c in fresh.columns if c in current.columns]
        current.createOrReplaceTempView("__lake_current")
        rows = spark.sql(
            _differing_dates(d, cols, set(fresh.columns) != set(current.columns))
        ).collect()
    days = sorted(r[0] for r in rows if r[0] is not None)
    return [day for day in days if start <= day <= end]


def dates_to_sync(spark, lake_root: str, source: Source, model) -> list[dt.date]:
    """The partitions of a partitioned model a sync (or its sensor) must recompute: the touched
    dates from the source's first day to today (daily partitions end with today's)."""
    today = dt.datetime.now(dt.timezone.utc).date()
    return touched_dates(spark, lake_root, model, source.start_date, today)


def _differing_dates(d: str, cols: list[str], schema_changed: bool) -> str:
    """Dates whose rows differ between __lake_fresh and __lake_current (see touched_dates)."""
    row = ", ".join(f"`{c}`" for c in cols)
    # decimal sums: a bigint sum of 64-bit hashes overflows
    digest = (
        f"COUNT(*) AS n, SUM(CAST(xxhash64({row}) AS DECIMAL(38,0))) AS h1, "
        f"SUM(CAST(hash({row}) AS DECIMAL(38,0))) AS h2"
    )
    same = "f.n = c.n AND f.h1 = c.h1 AND f.h2 = c.h2" if not schema_changed else "false"
    return f"""
        WITH f AS (SELECT {d} AS d, {digest} FROM __lake_fresh GROUP BY {d}),
             c AS (SELECT {d} AS d, {digest} FROM __lake_current GROUP BY {d})
        SELECT coalesce(f.d, c.d) AS d FROM f FULL OUTER JOIN c ON f.d = c.d
        WHERE f.d IS NULL OR c.d IS NULL OR NOT ({same})
    """
