"""Silver's quality in figures: per table, rows kept, rows quarantined and by which rule (read
with delta-rs, no engine), as `sync` and `demo` print it."""

from __future__ import annotations

from dataclasses import dataclass

from lake_assets.catalog import Source
from lake_assets.lib import delta
from lake_assets.lib.layout import table_path


@dataclass(frozen=True)
class TableQuality:
    table: str
    kept: int
    by_rule: dict[str, int]

    @property
    def quarantined(self) -> int:
        return sum(self.by_rule.values())

    @property
    def rate(self) -> float:
        total = self.kept + self.quarantined
        return self.quarantined / total if total else 0.0


def of_source(lake_root: str, source: Source) -> list[TableQuality]:
    """Each silver table of the source that exists, with its quarantine's counts by rule."""
    out = []
    for table in source.tables:
        kept_path = table_path(lake_root, "silver", source.name, table.name)
        if not delta.exists(kept_path):
            continue
        kept = delta.query(kept_path, "SELECT COUNT(*) FROM t")[0][0]
        q_path = table_path(lake_root, "silver", source.name, f"{table.name}_quarantine")
        by_rule = {}
        if delta.exists(q_path):
            by_rule = dict(delta.query(q_path, "SELECT _rule, COUNT(*) FROM t GROUP BY _rule"))
        out.append(
            TableQuality(table.name, int(kept), {k: int(v) for k, v in sorted(by_rule.items())})
        )
    return out


def lines(source_name: str, tables: list[TableQuality]) -> list[str]:
    """A table of the figures, one line per silver table."""
    rows = [
        (
            t.table,
            str(t.kept + t.quarantined),
            str(t.quarantined),
            f"{t.rate:.2%}",
            ", ".join(f"{k}={v}" for k, v in t.by_rule.items()) or "-",
        )
        for t in tables
    ]
    head = ("table", "rows", "quarantined", "rate", "by rule")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return [
        f"quality of silver/{source_name} (rows quarantined by rule):",
        fmt.format(*head),
        fmt.format(*("-" * w for w in widths)),
        *(fmt.format(*r) for r in rows),
    ]
