#!/usr/bin/env python
"""Screenshot the chart of gold/shop/daily_sales in the Dagster UI into docs/daily_sales_chart.png.

    python scripts/screenshot_daily_sales_chart.py        # builds a demo lake, serves it, shoots
    python scripts/screenshot_daily_sales_chart.py --url http://127.0.0.1:3000

The same demo lake, webserver and headless Chromium as `screenshot_asset_graph.py` (and the
same options). The model's `chart` metadata is a markdown image with an inline PNG (a data
URI). The asset's overview shows a markdown entry inline only while it is shorter than 1,000
characters; a longer one, as any chart is, shows as "[Show Markdown]", which opens a dialog
that renders the markdown, image included. So the script opens the asset's page, scrolls its
metadata table to the `chart` row, clicks its "[Show Markdown]", waits until the dialog's image
has loaded (and fails if the dialog holds no decoded image), and writes the settled page.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from screenshot_asset_graph import (
    REPO,
    Page,
    chromium_page,
    parser,
    run,
    say,
    settled_screenshot,
    skip_dialog_or,
    wait_until,
    write_png,
)

ASSET = "gold/shop/daily_sales"
ENTRY = "chart"

# The metadata table's row of an entry: its first cell is the entry's key.
OPEN_ENTRY = """
((key) => {
  const row = [...document.querySelectorAll('tr')]
    .find(r => r.cells.length && r.cells[0].textContent.trim() === key);
  if (!row) return 'no row';
  row.scrollIntoView({block: 'center'});
  const show = [...row.querySelectorAll('*')]  // the innermost: the link itself
    .find(e => !e.children.length && e.textContent.trim() === '[Show Markdown]');
  if (!show) return 'inline';
  show.click();
  return 'clicked';
})(%r)
"""
DIALOG_IMAGE = """
(() => {
  const d = document.querySelector('.bp5-dialog, [role="dialog"]');
  if (!d) return null;
  const img = d.querySelector('img');
  if (!img) return {image: false, text: d.innerText.slice(0, 200)};
  return {image: true, complete: img.complete, width: img.naturalWidth,
          height: img.naturalHeight, src: img.src.slice(0, 30)};
})()
"""


def open_chart(page: Page, entry: str, timeout: float) -> dict:
    """Click the entry's "[Show Markdown]"; its dialog's image once decoded."""
    state = page.eval(OPEN_ENTRY % entry)
    if state == "no row":
        raise SystemExit(f"the asset's metadata has no `{entry}` entry")
    if state == "inline":
        raise SystemExit(f"`{entry}` renders inline (no [Show Markdown]): nothing to open")

    def image():
        d = page.eval(DIALOG_IMAGE)
        if d and not d["image"]:
            raise SystemExit(f"the dialog of `{entry}` shows no image: {d['text']!r}")
        return d if d and d["complete"] else None

    d = wait_until(f"the dialog of `{entry}`", image, timeout)
    if not d["width"]:
        raise SystemExit(f"the image of `{entry}` did not decode ({d['src']}...)")
    return d


def shooter(asset: str, entry: str):
    def shoot(url: str, output: Path, chromium: str, width: int, height: int, timeout: float):
        with chromium_page(chromium, width, height) as page:
            page.call("Page.navigate", url=f"{url}/assets/{asset}")

            def metadata_drawn():
                return skip_dialog_or(page, lambda s: "[Show Markdown]" in s.get("text", ""))

            wait_until(f"the metadata of {asset}", metadata_drawn, timeout)
            time.sleep(1)
            d = open_chart(page, entry, timeout)
            say(f"{entry}: a {d['width']}x{d['height']} image in the dialog")
            shot = settled_screenshot(page, timeout)
        write_png(shot, output)

    return shoot


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0], REPO / "docs" / "daily_sales_chart.png")
    p.add_argument("--asset", default=ASSET, help=f"the asset's key (default {ASSET})")
    p.add_argument("--entry", default=ENTRY, help=f"its markdown entry (default {ENTRY})")
    args, _ = p.parse_known_args(argv)
    return run(p, argv, shooter(args.asset.strip("/"), args.entry))


if __name__ == "__main__":
    sys.exit(main())
