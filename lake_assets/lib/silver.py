"""Silver: bronze with types enforced, standardized, and checked against declared rules.

Each rule is a SQL boolean a good row satisfies (or an accepted-values list, or a reference
to another silver table's key). A row for which it is false or null violates it. Actions, as
Lakeflow's expectations: `warn` keeps the row and counts it, `drop` moves it to the table's
quarantine (with the rule and when it was first quarantined), `fail` stops the run before
anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as ST

from lake_assets.catalog import Rule, Table
from lake_assets.lib.delta import quote

QUARANTINE_COLUMNS = ("_rule", "_quarantined_at")


class RuleFailure(ValueError):
    """A `fail` rule was violated: the message names the table, the rule and the count."""


@dataclass
class RuleResults:
    total: int = 0
    violations: dict[str, int] = field(default_factory=dict)  # rule -> rows violating it
    dropped: int = 0

    def metadata(self) -> dict:
        return {f"rule/{k}": v for k, v in self.violations.items()} | {
            "rows_in": self.total,
            "rows_dropped": self.dropped,
        }


def enforce_types(df: DataFrame, table: Table) -> DataFrame:
    """Cast the declared columns to their catalog types; other columns pass through."""
    declared = table.column_types
    cols = []
    for f in df.schema.fields:
        if f.name in declared and f.dataType.simpleString() != declared[f.name]:
            cols.append(F.col(quote(f.name)).cast(declared[f.name]).alias(f.name))
        else:
            cols.append(F.col(quote(f.name)))
    return df.select(*cols)


def standardize(df: DataFrame, table: Table) -> DataFrame:
    cols = []
    for f in df.schema.fields:
        c = F.col(quote(f.name))
        if isinstance(f.dataType, ST.StringType) and not f.name.startswith("_"):
            if table.trim_strings:
                c = F.trim(c)
            if f.name in table.lower:
                c = F.lower(c)
            if f.name in table.upper:
                c = F.upper(c)
        cols.append(c.alias(f.name))
    return df.select(*cols)


def _ok_column(rule: Rule) -> str:
    return f"_ok_{rule.name}"


def with_rule_flags(
    df: DataFrame, table: Table, references: dict[str, DataFrame | None]
) -> DataFrame:
    """One boolean column per rule: true where the row satisfies it (null counts as false)."""
    for rule in table.rules:
        if rule.references:
            ref_table, mine, theirs = rule.references
            if references.get(ref_table) is None:
                df = df.withColumn(_ok_column(rule), F.lit(False))
                continue
            ref = (
                references[ref_table]
                .select(*[F.col(quote(t)).alias(f"_ref_{i}") for i, t in enumerate(theirs)])
                .distinct()
            )
            ref = ref.withColumn(f"_hit_{rule.name}", F.lit(True))
            cond = [df[quote(m)] == ref[f"_ref_{i}"] for i, m in enumerate(mine)]
            df = df.join(ref, on=cond, how="left")
            df = df.drop(*[f"_ref_{i}" for i in range(len(theirs))])
            hit = F.coalesce(F.col(f"_hit_{rule.name}"), F.lit(False))
            extra = F.coalesce(F.expr(rule.expr), F.lit(False))
            df = df.withColumn(_ok_column(rule), hit & extra).drop(f"_hit_{rule.name}")
        elif rule.column:
            ok = F.coalesce(F.col(quote(rule.column)).isin(list(rule.accepted)), F.lit(False))
            df = df.withColumn(_ok_column(rule), ok)
        else:
            df = df.withColumn(_ok_column(rule), F.coalesce(F.expr(rule.expr), F.lit(False)))
    return df


def apply_rules(
    df: DataFrame,
    table: Table,
    references: dict[str, DataFrame],
    previous_quarantine: DataFrame | None,
    now_sql: str,
) -> tuple[DataFrame, DataFrame, RuleResults]:
    """(rows kept, rows quarantined, counts). Raises RuleFailure on a violated `fail` rule."""
    name = f"{table.source}.{table.name}"
    base_cols = df.columns
    flagged = with_rule_flags(df, table, references)
    results = RuleResults()
    if not table.rules:
        results.total = df.count()
        empty = (
            df.limit(0)
            .withColumn("_rule", F.lit(None).cast("string"))
            .withColumn("_quarantined_at", F.lit(None).cast("timestamp"))
        )
        return df, empty, results
    drops = [r for r in table.rules if r.action == "drop"]
    any_drop = F.lit(False)
    for r in drops:
        any_drop = any_drop | ~F.col(_ok_column(r))
    aggs = [
        F.count(F.lit(1)).alias("_total"),
        F.sum(F.when(any_drop, 1).otherwise(0)).alias("_dropped"),
    ] + [F.sum(F.when(~F.col(_ok_column(r)), 1).otherwise(0)).alias(r.name) for r in table.rules]
    row = flagged.agg(*aggs).collect()[0]
    results.total = row["_total"]
    results.dropped = int(row["_dropped"] or 0)
    results.violations = {r.name: int(row[r.name] or 0) for r in table.rules}
    failing = [r for r in table.rules if r.action == "fail" and results.violations[r.name]]
    if failing:
        detail = ", ".join(f"{r.name} ({results.violations[r.name]} row(s))" for r in failing)
        raise RuleFailure(
            f"silver {name}: rule(s) with action fail violated: {detail}; nothing was written"
        )
    if drops:
        # The first violated drop rule, in catalog order, is the one that rejected the row.
        rejected_by = F.lit(None).cast("string")
        for r in reversed(drops):
            rejected_by = F.when(~F.col(_ok_column(r)), F.lit(r.name)).otherwise(rejected_by)
        flagged = flagged.withColumn("_rule", rejected_by)
    else:
        flagged = flagged.withColumn("_rule", F.lit(None).cast("string"))
    kept = flagged.where("_rule IS NULL").select(*[quote(c) for c in base_cols])
    bad = flagged.where("_rule IS NOT NULL").select(*[quote(c) for c in base_cols], "_rule")
    keys = list(table.primary_key)
    if previous_quarantine is not None and "_quarantined_at" in previous_quarantine.columns:
        prev = previous_quarantine.select(
            *[F.col(quote(k)).alias(f"_p_{k}") for k in keys],
            F.col("_rule").alias("_p_rule"),
            F.col("_quarantined_at").alias("_p_at"),
        )
        cond = [bad[quote(k)] == prev[f"_p_{k}"] for k in keys] + [bad["_rule"] == prev["_p_rule"]]
        bad = (
            bad.join(prev, on=cond, how="left")
            .withColumn("_quarantined_at", F.coalesce(F.col("_p_at"), F.expr(now_sql)))
            .drop(*[f"_p_{k}" for k in keys], "_p_rule", "_p_at")
        )
    else:
        bad = bad.withColumn("_quarantined_at", F.expr(now_sql))
    return kept, bad, results
