"""The shop simulator: DMS layout, determinism, continuation, csv, dirty data."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from lake_assets.catalog import load_catalog
from lake_assets.sources.shop.simulator import (
    DIRTY_KINDS,
    PRIMARY_KEYS,
    STATUSES,
    TABLES,
    TIMESTAMP_COLUMN,
    SimulationError,
    arrow_schema,
    history,
    simulate,
)

TODAY = dt.date(2024, 3, 1)
SCALE = 0.3  # small and quick; the model is the same at every scale

LOAD_RE = re.compile(r"^shop/public/(?P<table>\w+)/LOAD[0-9A-F]{8}\.(?P<ext>parquet|csv)$")
CDC_RE = re.compile(
    r"^shop/public/(?P<table>\w+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"(?P<name>(?P<date>\d{8})-(?P<time>\d{9}))\.(?P<ext>parquet|csv)$"
)
ALLOWED = {
    ("placed", "paid"),
    ("placed", "cancelled"),
    ("paid", "shipped"),
    ("paid", "cancelled"),
    ("shipped", "delivered"),
    ("delivered", "refunded"),
}
ISO = {
    "US",
    "GB",
    "DE",
    "FR",
    "ES",
    "IT",
    "NL",
    "PL",
    "SE",
    "DK",
    "NO",
    "CA",
    "AU",
    "IE",
    "AT",
    "CH",
    "BE",
    "PT",
    "BR",
    "MX",
}
CLEAN_EMAIL = re.compile(r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$")


def _bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _data_files(root: Path) -> list[str]:
    return [r for r in _bytes(root) if not r.startswith("shop/_simulator/")]


def _read_csv(path: Path, table: str, with_op: bool) -> pa.Table:
    schema = arrow_schema(table, with_op)
    parse_types = {
        f.name: (pa.timestamp("us") if pa.types.is_timestamp(f.type) else f.type) for f in schema
    }
    t = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=schema.names),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=parse_types, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )
    return t.cast(schema)  # DMS csv timestamps carry no zone: they are UTC


def _changes(root: Path, table: str) -> pa.Table:
    """Every landed row of a table in the contract's order: full load, then commit time,
    then file name, then position. Full-load rows get Op 'I'."""
    parts = []
    for rel in _data_files(root):
        m_load, m_cdc = LOAD_RE.match(rel), CDC_RE.match(rel)
        m = m_load or m_cdc
        if not m or m["table"] != table:
            continue
        path = root / rel
        t = pq.read_table(path) if rel.endswith(".parquet") else _read_csv(path, table, bool(m_cdc))
        if m_load:
            t = t.add_column(0, "Op", pa.array(["I"] * t.num_rows, pa.string()))
        n = t.num_rows
        t = t.append_column("_load", pa.array([0 if m_load else 1] * n, pa.int8()))
        t = t.append_column("_file", pa.array([rel.rsplit("/", 1)[1]] * n, pa.string()))
        t = t.append_column("_pos", pa.array(range(n), pa.int64()))
        parts.append(t)
    t = pa.concat_tables(parts)
    return t.sort_by(
        [
            ("_load", "ascending"),
            (TIMESTAMP_COLUMN, "ascending"),
            ("_file", "ascending"),
            ("_pos", "ascending"),
        ]
    )


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clean")
    simulate(str(root), 3, scale=1.0, today=TODAY)
    return root


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("dirty")
    summary = simulate(str(root), 2, scale=1.0, dirty=True, today=TODAY)
    return root, summary


def test_same_seed_same_bytes(tmp_path):
    a = simulate(str(tmp_path / "a"), 3, scale=SCALE, today=TODAY)
    simulate(str(tmp_path / "b"), 3, scale=SCALE, today=TODAY)
    simulate(str(tmp_path / "c"), 3, scale=SCALE, seed=8, today=TODAY)
    assert (
        a.days == 3 and a.first_day == dt.date(2024, 2, 27) and a.last_day == dt.date(2024, 2, 29)
    )
    assert a.full_load and a.files_written == len(a.files) == len(_data_files(tmp_path / "a"))
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    assert _bytes(tmp_path / "a") != _bytes(tmp_path / "c")


def test_two_runs_of_two_days_are_one_run_of_four(tmp_path):
    split, whole = tmp_path / "split", tmp_path / "whole"
    first = simulate(str(split), 2, scale=SCALE, today=TODAY)
    second = simulate(str(split), 2, scale=SCALE, today=TODAY + dt.timedelta(days=2))
    simulate(str(whole), 4, scale=SCALE, today=TODAY + dt.timedelta(days=2))
    assert (first.first_day, first.last_day) == (dt.date(2024, 2, 28), dt.date(2024, 2, 29))
    assert (second.first_day, second.last_day) == (dt.date(2024, 3, 1), dt.date(2024, 3, 2))
    assert first.full_load and not second.full_load
    assert not any(f.endswith("LOAD00000001.parquet") for f in second.files)
    assert _bytes(split) == _bytes(whole)

    # one history: no key is inserted twice, and the second run's ids follow the first's
    for table in TABLES:
        t = _changes(split, table)
        keys = list(PRIMARY_KEYS[table])
        inserted = t.filter(pc.equal(t["Op"], "I")).select(keys).to_pylist()
        assert len(inserted) == len({tuple(r.values()) for r in inserted}), table
    orders = _changes(split, "orders")
    ids_run1 = {
        r["order_id"]
        for r in orders.filter(pc.equal(orders["Op"], "I")).to_pylist()
        if r[TIMESTAMP_COLUMN].date() < second.first_day
    }
    ids_run2 = {
        r["order_id"]
        for r in orders.filter(pc.equal(orders["Op"], "I")).to_pylist()
        if r[TIMESTAMP_COLUMN].date() >= second.first_day
    }
    assert ids_run2 and min(ids_run2) > max(ids_run1)


def _status_moves(root: Path) -> set[tuple[str, str]]:
    """Every order status move landed under root, checked to go forward only."""
    status: dict[int, str] = {}
    seen_moves = set()
    for r in _changes(root, "orders").to_pylist():
        assert r["status"] in STATUSES
        oid = r["order_id"]
        if r["_load"] == 0:
            status[oid] = r["status"]
        elif r["Op"] == "I":
            assert oid not in status and r["status"] == "placed"
            assert r["order_ts"] == r["updated_at"] == r[TIMESTAMP_COLUMN]
            status[oid] = "placed"
        else:
            assert r["Op"] == "U" and oid in status
            move = (status[oid], r["status"])
            assert move in ALLOWED, (oid, move)
            assert r["updated_at"] == r[TIMESTAMP_COLUMN] > r["order_ts"]
            seen_moves.add(move)
            status[oid] = r["status"]
    return seen_moves


def test_statuses_only_move_forward(tmp_path):
    simulate(str(tmp_path), 2, scale=SCALE, today=TODAY)
    simulate(str(tmp_path), 3, scale=SCALE, today=TODAY + dt.timedelta(days=3))
    seen_moves = _status_moves(tmp_path)
    assert {("placed", "paid"), ("paid", "shipped"), ("shipped", "delivered")} <= seen_moves
    assert {"cancelled"} & {b for _, b in seen_moves}


def _layout(
    root: Path, now: dt.datetime | None = None, loads_of=frozenset(TABLES)
) -> dict[tuple[str, str], int]:
    """{(table, yyyyMMdd): CDC files}, checking every landed file against DMS's layout and
    the lake's order: names increase per table, name >= every commit in the file, same day,
    and no file named after `now`."""
    last_name: dict[str, str] = {}
    cdc_per_table_day: dict[tuple[str, str], int] = {}
    loads = set()
    for rel in _data_files(root):
        m_load, m_cdc = LOAD_RE.match(rel), CDC_RE.match(rel)
        assert m_load or m_cdc, rel
        table = (m_load or m_cdc)["table"]
        t = pq.read_table(root / rel)
        assert t.schema == arrow_schema(table, with_op=bool(m_cdc)), rel
        assert t.num_rows > 0
        if m_load:
            loads.add(table)
            assert len(set(t[TIMESTAMP_COLUMN].to_pylist())) == 1
            continue
        # date folders are the file's date; names increase per table
        assert m_cdc["date"] == m_cdc["y"] + m_cdc["m"] + m_cdc["d"]
        assert m_cdc["name"] > last_name.get(table, ""), rel
        last_name[table] = m_cdc["name"]
        key = (table, m_cdc["date"])
        cdc_per_table_day[key] = cdc_per_table_day.get(key, 0) + 1
        assert set(t["Op"].to_pylist()) <= {"I", "U", "D"}
        ts = t[TIMESTAMP_COLUMN].to_pylist()
        assert ts == sorted(ts), rel  # commit order within a file
        named = dt.datetime.strptime(m_cdc["name"], "%Y%m%d-%H%M%S%f").replace(
            tzinfo=dt.timezone.utc
        )
        assert named >= ts[-1] and named.date() == ts[-1].date(), rel
        assert now is None or named <= now, rel
    assert loads == set(loads_of)
    return cdc_per_table_day


def test_files_and_folders_follow_dms(clean):
    cdc_per_table_day = _layout(clean)
    assert {d for _, d in cdc_per_table_day} == {"20240227", "20240228", "20240229"}
    assert all(cdc_per_table_day[("orders", d)] >= 3 for d in ("20240227", "20240228", "20240229"))
    assert all(
        cdc_per_table_day[("order_items", d)] >= 3 for d in ("20240227", "20240228", "20240229")
    )


def test_deletes_and_key_only_deletes(clean):
    c = _changes(clean, "customers")
    d = c.filter(pc.equal(c["Op"], "D"))
    assert d.num_rows > 0
    key_only = d.filter(pc.is_null(d["email"]))
    assert 0 < key_only.num_rows < d.num_rows
    assert all(
        v is None
        for col in ("full_name", "country", "created_at", "updated_at")
        for v in key_only[col].to_pylist()
    )
    items = _changes(clean, "order_items")
    assert items.filter(pc.equal(items["Op"], "D")).num_rows > 0


def test_clean_data_is_clean_and_consistent(clean):
    cust = _changes(clean, "customers")
    live = cust.filter(pc.not_equal(cust["Op"], "D"))
    assert all(CLEAN_EMAIL.match(e) for e in live["email"].to_pylist())
    assert set(live["country"].to_pylist()) <= ISO
    names = " ".join(live["full_name"].to_pylist())
    assert any(ord(ch) > 127 for ch in names)  # accents and other unicode

    # products' price history, to check that items are sold at the price of the moment
    prices: dict[int, list[tuple[dt.datetime, object]]] = {}
    for r in _changes(clean, "products").to_pylist():
        prices.setdefault(r["product_id"], []).append((r["updated_at"], r["unit_price"]))
    customers_created = {r["customer_id"]: r["created_at"] for r in live.to_pylist()}
    orders = {
        r["order_id"]: r
        for r in _changes(clean, "orders").to_pylist()
        if r["Op"] == "I" or r["_load"] == 0
    }
    for r in orders.values():
        assert customers_created[r["customer_id"]] < r["order_ts"]
    items = _changes(clean, "order_items")
    for r in items.filter(pc.not_equal(items["Op"], "D")).to_pylist():
        assert r["order_id"] in orders
        assert 1 <= r["quantity"] and 1 <= r["line_no"] <= 6 + 3
        assert 0 <= r["discount"] <= r["quantity"] * r["unit_price"]
        if r["_load"]:  # the full load shows only each product's latest price
            at_time = [p for ts, p in prices[r["product_id"]] if ts <= r["updated_at"]]
            assert at_time and at_time[-1] == r["unit_price"], r


def test_csv_round_trip(tmp_path):
    pq_root, csv_root = tmp_path / "pq", tmp_path / "csv"
    simulate(str(pq_root), 2, scale=SCALE, today=TODAY)
    s = simulate(str(csv_root), 2, scale=SCALE, today=TODAY, fmt="csv")
    assert s.files and all(f.endswith(".csv") for f in s.files)
    raw = b"".join((csv_root / f).read_bytes() for f in s.files)
    assert b'"Poster ""Northern Lights"", 50\xc3\x97' in raw  # quotes doubled, comma, UTF-8
    assert b'"Greeting Card Set\n(12 cards' in raw  # a line break inside a quoted field
    assert re.search(rb"\n[IUD],\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6},", raw)
    assert b",true," in raw and b"Op" not in raw.split(b"\n", 1)[0]  # no header row
    for rel in s.files:
        m = LOAD_RE.match(rel) or CDC_RE.match(rel)
        assert m, rel
        got = _read_csv(
            csv_root / rel, m["table"], with_op=not rel.rsplit("/", 1)[1].startswith("LOAD")
        )
        want = pq.read_table(pq_root / (rel[: -len(".csv")] + ".parquet"))
        assert got.equals(want), rel


def test_dirty_injects_every_kind(dirty):
    root, summary = dirty
    assert all(summary.dirty_rows[k] > 0 for k in DIRTY_KINDS), summary.dirty_rows
    cust = _changes(root, "customers")
    rows = cust.filter(pc.not_equal(cust["Op"], "D")).to_pylist()
    emails = [r["email"] for r in rows]
    countries = {r["country"] for r in rows}
    assert any("@" not in e for e in emails)
    assert any(" " in e.strip() for e in emails)
    assert any(e != e.strip() and e.strip() == e.strip().upper() and "@" in e for e in emails)
    assert {"XX", "UK"} <= countries
    assert any(c.islower() and c.upper() in ISO for c in countries)
    assert any(c != c.strip() and c.strip().upper() in ISO for c in countries)
    bad = sum(1 for e in emails if not CLEAN_EMAIL.match(e)) + sum(
        1 for r in rows if r["country"] not in ISO
    )
    assert 0.01 <= bad / len(rows) <= 0.06  # a small share
    items = _changes(root, "order_items")
    assert pc.sum(pc.less(items["quantity"], 0)).as_py() > 0
    known = set(cust["customer_id"].to_pylist())
    orders = _changes(root, "orders")
    assert any(c not in known for c in orders["customer_id"].to_pylist())


def test_clean_has_no_dirty_kinds(clean):
    orders = _changes(clean, "orders")
    cust = set(_changes(clean, "customers")["customer_id"].to_pylist())
    assert set(orders["customer_id"].to_pylist()) <= cust
    items = _changes(clean, "order_items")
    q = items.filter(pc.not_equal(items["Op"], "D"))["quantity"]
    assert pc.min(q).as_py() >= 1


def _at(day: dt.date, hms: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hms), tzinfo=dt.timezone.utc)


def _commit_span(root: Path, files: list[str]) -> tuple[dt.datetime, dt.datetime]:
    ts = [v for f in files for v in pq.read_table(root / f)[TIMESTAMP_COLUMN].to_pylist()]
    return min(ts), max(ts)


def test_more_days_than_the_calendar_has_fill_the_time_up_to_now(tmp_path):
    """Any number of days, any number of calls: each call's days land between the end of the
    history and now, compressed, one history on (names and commits in order, ids go on)."""
    simulate(str(tmp_path), 2, scale=SCALE, today=TODAY)  # ends when TODAY began
    calls = [
        (1, _at(TODAY, "10:00:00")),
        (7, _at(TODAY, "10:00:01.5")),
        (2, _at(TODAY, "10:00:02")),
    ]
    before = _at(TODAY, "00:00:00")
    for days, now in calls:
        s = simulate(str(tmp_path), days, scale=SCALE, now=now)
        assert s.days == days and s.files_written and not s.full_load, s.describe()
        assert (s.landed_from, s.landed_to) == (before, now) and "simulated day in" in s.pace
        lo, hi = _commit_span(tmp_path, s.files)
        assert before <= lo and hi < now
        before = now
    assert s.last_day == TODAY + dt.timedelta(days=9)  # the simulated clock passed today
    _layout(tmp_path, now=calls[-1][1])
    assert {("placed", "paid"), ("paid", "shipped")} <= _status_moves(tmp_path)
    orders = _changes(tmp_path, "orders")
    inserted = orders.filter(pc.equal(orders["Op"], "I"))["order_id"].to_pylist()
    assert len(inserted) == len(set(inserted))


def test_a_clock_that_has_not_moved_lands_nothing(tmp_path):
    simulate(str(tmp_path), 2, scale=SCALE, today=TODAY)
    before = _bytes(tmp_path)
    with pytest.raises(SimulationError, match="dated in the future"):
        simulate(str(tmp_path), 2, scale=SCALE, today=TODAY)
    assert _bytes(tmp_path) == before


def test_a_history_from_start_fills_every_day_up_to_now(tmp_path):
    """The demo's history: no full load, the shop's existing rows inserted at `start`, and no
    row dated before it; few simulated days stretched over every day up to now (one file a
    table a day)."""
    start, now = dt.date(2024, 1, 1), _at(TODAY, "09:30:00")
    s = simulate(str(tmp_path), 3, scale=SCALE, start=start, now=now, full_load=False)
    assert (s.first_day, s.last_day) == (start, dt.date(2024, 1, 3)) and not s.full_load
    assert (s.landed_from, s.landed_to) == (_at(start, "00:00:00"), now) and "days" in s.pace
    per_day = _layout(tmp_path, now=now, loads_of=())
    days = sorted({d for _, d in per_day})
    assert days[0] == "20240101" and days[-1] == f"{TODAY:%Y%m%d}"
    assert len(days) > 0.8 * ((TODAY - start).days + 1)  # orders change nearly every day
    assert max(per_day.values()) == 1
    customers = _changes(tmp_path, "customers")
    assert customers["Op"][0].as_py() == "I" and customers[TIMESTAMP_COLUMN][0].as_py() == _at(
        start, "00:00:00"
    )
    orders = _changes(tmp_path, "orders")
    assert min(orders["order_ts"].to_pylist()) > _at(start, "00:00:00")
    assert _status_moves(tmp_path)
    h = history(str(tmp_path))
    assert (h.days, h.first_day, h.landed_from, h.landed_to) == (3, start, s.landed_from, now)
    assert (h.full_load, h.warmup_days) == (False, 0)


def test_a_continued_history_keeps_its_options(tmp_path):
    first = simulate(str(tmp_path), 1, scale=SCALE, dirty=True, fmt="csv", seed=9, today=TODAY)
    s = simulate(str(tmp_path), 1, now=_at(TODAY, "08:00:00"))
    assert s.fmt == "csv" and all(f.endswith(".csv") for f in s.files)
    h = history(str(tmp_path))
    assert (h.seed, h.scale, h.dirty, h.fmt) == (9, SCALE, True, "csv")
    total = {k: first.dirty_rows[k] + s.dirty_rows[k] for k in DIRTY_KINDS}
    assert h.dirty_rows == total and sum(total.values()) > 0
    with pytest.raises(SimulationError, match="seed 9"):
        simulate(str(tmp_path), 1, seed=8, now=_at(TODAY, "09:00:00"))


def test_refuses_foreign_landing_and_other_format(tmp_path):
    (tmp_path / "shop" / "public" / "customers").mkdir(parents=True)
    (tmp_path / "shop" / "public" / "customers" / "LOAD00000001.parquet").write_bytes(b"x")
    with pytest.raises(SimulationError, match="no simulator state"):
        simulate(str(tmp_path), 1, scale=SCALE, today=TODAY)
    other = tmp_path / "other"
    simulate(str(other), 1, scale=SCALE, today=TODAY)
    with pytest.raises(SimulationError, match="fmt='parquet'"):
        simulate(str(other), 1, scale=SCALE, today=TODAY, fmt="csv")


def test_scale_changes_volume(tmp_path):
    small = simulate(str(tmp_path / "s"), 1, scale=0.1, today=TODAY)
    big = simulate(str(tmp_path / "b"), 1, scale=1.0, today=TODAY)
    for table in ("customers", "orders", "order_items"):
        assert big.rows[table]["load"] > 5 * small.rows[table]["load"], table
        assert big.rows[table]["I"] > 3 * small.rows[table]["I"], table
    assert 200 < big.rows["orders"]["I"] < 450  # hundreds of orders a day at scale 1
    assert 2000 < big.rows["customers"]["load"] < 5000  # a few thousand customers


def test_progress_once_per_day_and_summary(tmp_path):
    lines: list[str] = []
    s = simulate(str(tmp_path), 3, scale=SCALE, today=TODAY, progress=lines.append)
    assert len(lines) == 3
    assert all(f"2024-02-{d}" in line for d, line in zip((27, 28, 29), lines))
    assert s.total_rows == sum(sum(v.values()) for v in s.rows.values())
    assert "3 day(s)" in s.describe()


def test_packaged_catalog_matches_the_simulator(clean):
    cat = load_catalog(
        str(
            Path(__file__).resolve().parents[2]
            / "lake_assets"
            / "sources"
            / "shop"
            / "catalog.yaml"
        )
    )
    src = cat.source("shop")
    assert (src.format, src.timestamp_column, src.start_date) == (
        "dms",
        TIMESTAMP_COLUMN,
        dt.date(2024, 1, 1),
    )
    assert [t.name for t in src.tables] == list(TABLES)
    for t in src.tables:
        assert t.schema == "public"
        assert t.primary_key == PRIMARY_KEYS[t.name]
        assert t.columns == TABLES[t.name]
