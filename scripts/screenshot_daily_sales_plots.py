#!/usr/bin/env python
"""Screenshot the UI's plots of gold/shop/daily_sales by partition into docs/daily_sales_plots.png.

    python scripts/screenshot_daily_sales_plots.py        # builds a demo lake, serves it, shoots
    python scripts/screenshot_daily_sales_plots.py --url http://127.0.0.1:3000

The same demo lake, webserver and headless Chromium as `screenshot_asset_graph.py` (and the
same options). Dagster's UI (1.13) has no "Plots" tab: the asset's Overview has a "Metadata"
section with a Table / Plots toggle, and for a partitioned asset its plots default to
"Partitions", one chart per numeric metadata key (two a row, keys in alphabetical order), the x
axis the asset's latest 120 partition keys, a point for each of them that has a materialization
carrying the key. No key is chosen: every numeric key is charted. The script checks over GraphQL
that those partitions hold a value of the entry (`sum_gross_revenue`), opens the Overview,
hides the navigation, clicks "Plots", waits until the entry's chart is drawn, scrolls so that
the toggles are at the top and the entry's chart is in view, and writes the settled page.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from screenshot_asset_graph import (
    HIDE_NAV_AND_TREE,
    REPO,
    Page,
    chromium_page,
    gql,
    parser,
    run,
    say,
    settled_screenshot,
    skip_dialog_or,
    wait_until,
    write_png,
)

ASSET = "gold/shop/daily_sales"
ENTRY = "sum_gross_revenue"
PLOTTED_PARTITIONS = 120  # the UI's limit (AssetPartitionMetadataPlots)

# The Table / Plots toggle of the Overview's metadata section: its "Plots" button.
CLICK_PLOTS = """
(() => {
  const plots = [...document.querySelectorAll('button')]
    .find(b => b.textContent.trim() === 'Plots');
  if (!plots) return false;
  plots.click();
  return true;
})()
"""
# The entry's chart: the innermost element naming it, up to the grid cell that holds a canvas.
CHART = """
((key, scroll) => {
  const name = [...document.querySelectorAll('body *')]
    .find(e => !e.children.length && e.textContent.trim() === key);
  let cell = name;
  while (cell && !cell.querySelector('canvas')) cell = cell.parentElement;
  if (!cell) return null;
  const canvas = cell.querySelector('canvas');
  const toggle = [...document.querySelectorAll('button')]
    .find(b => b.textContent.trim() === 'Plots');
  const partitions = [...document.querySelectorAll('button')]
    .find(b => b.textContent.trim() === 'Partitions');
  if (scroll) {
    (partitions || toggle).scrollIntoView({block: 'start'});
    if (cell.getBoundingClientRect().bottom > innerHeight) cell.scrollIntoView({block: 'end'});
  }
  const r = cell.getBoundingClientRect();
  return {width: canvas.width, height: canvas.height, top: r.top, bottom: r.bottom,
          byPartition: document.body.innerText.includes('When graphing values by partition')};
})(%s, %s)
"""


def plotted_values(url: str, asset: str, entry: str) -> dict[str, float]:
    """The entry's value in the latest materialization of each partition the UI plots."""
    path = json.dumps(asset.split("/"))
    keys = gql(
        url,
        f"{{ assetNodeOrError(assetKey: {{path: {path}}}) {{ ... on AssetNode {{ "
        f"partitionKeyConnection(limit: {PLOTTED_PARTITIONS}, ascending: false) "
        f"{{ results }} }} }} }}",
        timeout=60,
    )["assetNodeOrError"]
    if "partitionKeyConnection" not in keys:
        raise SystemExit(f"{asset} is not a partitioned asset of this webserver")
    partitions = keys["partitionKeyConnection"]["results"]
    events = gql(
        url,
        f"{{ assetNodeOrError(assetKey: {{path: {path}}}) {{ ... on AssetNode {{ "
        f"latestMaterializationByPartition(partitions: {json.dumps(partitions)}) {{ partition "
        f"metadataEntries {{ label ... on FloatMetadataEntry {{ floatValue }} "
        f"... on IntMetadataEntry {{ intValue }} }} }} }} }} }}",
        timeout=60,
    )["assetNodeOrError"]["latestMaterializationByPartition"]
    values = {}
    for e in filter(None, events):
        for m in e["metadataEntries"]:
            value = m.get("floatValue", m.get("intValue"))
            if m["label"] == entry and value is not None:
                values[e["partition"]] = value
    return values


def shooter(asset: str, entry: str):
    def shoot(url: str, output: Path, chromium: str, width: int, height: int, timeout: float):
        values = plotted_values(url, asset, entry)
        if not values:
            raise SystemExit(
                f"no materialization of the latest {PLOTTED_PARTITIONS} partitions of {asset} "
                f"carries a numeric `{entry}`: the UI would chart nothing"
            )
        say(f"{entry}: in {len(values)} partitions, {min(values)} to {max(values)}")
        with chromium_page(chromium, width, height) as page:
            page.call("Page.navigate", url=f"{url}/assets/{asset}?view=overview")

            def toggle_drawn():
                return skip_dialog_or(page, lambda s: "Plots" in s.get("text", ""))

            wait_until(f"the overview of {asset}", toggle_drawn, timeout)
            say(f"hid: {', '.join(page.eval(HIDE_NAV_AND_TREE)) or 'nothing'}")
            time.sleep(1)
            if not page.eval(CLICK_PLOTS):
                raise SystemExit(f"the overview of {asset} has no Plots toggle")
            chart = wait_until(
                f"the chart of `{entry}`",
                lambda: chart_state(page, entry, scroll=False),
                timeout,
            )
            if not chart["byPartition"]:
                raise SystemExit(f"the plots of {asset} are not by partition")
            chart = chart_state(page, entry, scroll=True)
            say(f"{entry}: a {chart['width']}x{chart['height']} chart at y {chart['top']:.0f}")
            shot = settled_screenshot(page, timeout)
        write_png(shot, output)

    return shoot


def chart_state(page: Page, entry: str, scroll: bool) -> dict | None:
    """The entry's drawn chart (its canvas size, its cell's place), else None."""
    chart = page.eval(CHART % (json.dumps(entry), json.dumps(scroll)))
    return chart if chart and chart["width"] and chart["height"] else None


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0], REPO / "docs" / "daily_sales_plots.png")
    p.add_argument("--asset", default=ASSET, help=f"the asset's key (default {ASSET})")
    p.add_argument("--entry", default=ENTRY, help=f"its numeric entry (default {ENTRY})")
    p.set_defaults(height=1160)  # the toggles and the third row of charts, where the entry is
    args, _ = p.parse_known_args(argv)
    return run(p, argv, shooter(args.asset.strip("/"), args.entry))


if __name__ == "__main__":
    sys.exit(main())
