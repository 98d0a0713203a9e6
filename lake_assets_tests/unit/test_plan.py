"""lib/plan.py, the one rule for what is new: pure functions of a listing and what raw holds."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from lake_assets.formats.base import LandedFile
from lake_assets.lib.plan import new_files
from lake_assets.lib.raw import Held

D1, D2, LAST = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)


def _f(name: str, day: dt.date, size: int = 10) -> LandedFile:
    return LandedFile(
        path=f"/l/{name}",
        rel=name,
        name=name,
        is_full_load=False,
        order_key=name,
        partition_date=day,
        name_time=None,
        size=size,
    )


def test_new_is_not_held_or_held_with_another_size_by_day():
    files = [_f("a", D1), _f("b", D1, 11), _f("c", D2), _f("late", dt.date(2099, 12, 31))]
    held = {"a": Held(D1, 10, "x"), "b": Held(D1, 10, "y"), "gone": Held(D2, 5, "z")}
    got = new_files(files, held, LAST)
    assert {d: [f.name for f in fs] for d, fs in got.items()} == {
        D1: ["b"],
        D2: ["c"],
        LAST: ["late"],
    }


def test_files_raw_holds_that_are_no_longer_landed_are_not_new():
    assert new_files([], {"gone": Held(D1, 5, "z")}, LAST) == {}


def test_the_planner_imports_no_dagster():
    code = "import sys, lake_assets.lib.plan; sys.exit('dagster' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
