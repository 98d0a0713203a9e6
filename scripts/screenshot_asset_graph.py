#!/usr/bin/env python
"""Screenshot the global asset graph of the Dagster UI into docs/asset_graph.png.

    python scripts/screenshot_asset_graph.py          # builds a demo lake, serves it, shoots
    python scripts/screenshot_asset_graph.py --url http://127.0.0.1:3000   # a running webserver

Without --url it runs `lake-assets demo --lake-root <tmp>/lake` (a synced lake, so the graph
shows materialized assets), then `dagster-webserver -w workspace.yaml` on 127.0.0.1
and a free port against that lake (the webserver only: no daemon, so no sensor starts runs
while the page is shot), and stops it (its whole process group) at the end.

The page is driven in headless Chromium (the Debian `chromium` package:
`apt-get install -y chromium`) over the DevTools protocol, because a plain `--screenshot`
cannot get past what the page needs first: the "Join the Dagster community" dialog the UI
opens on 127.0.0.1, the groups (raw, bronze, silver, gold) that start collapsed, and the
asset tree that takes a third of the width. The script collapses the navigation and the
tree, lays the graph out top to bottom, expands all groups (the UI's Alt+E, which also fits
the graph to the width), waits until every group is drawn and two screenshots a second and
a half apart are identical, and writes the PNG (1600x1000 by default).

Its options, its demo lake and webserver (`parser`, `run`) and its browser (`chromium_page`,
`settled_screenshot`) also serve `screenshot_daily_sales_chart.py` and
`screenshot_daily_sales_plots.py`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gql(url: str, query: str, timeout: float = 10) -> dict:
    req = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = json.load(resp)
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def wait_for_webserver(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Until the GraphQL endpoint answers and every code location has loaded."""
    query = (
        "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
        "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
    )
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the webserver exited with {proc.returncode} before answering")
        try:
            entries = gql(url, query)["workspaceOrError"]["locationEntries"]
            for e in entries:
                err = e.get("locationOrLoadError") or {}
                if err.get("__typename") == "PythonError":
                    raise SystemExit(f"code location {e['name']} failed to load: {err['message']}")
            if entries and all(
                e["loadStatus"] == "LOADED" and e.get("locationOrLoadError") for e in entries
            ):
                return
            last = str([(e["name"], e["loadStatus"]) for e in entries])
        except (OSError, RuntimeError, KeyError, TypeError) as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(1)
    raise SystemExit(f"{url}/graphql did not answer within {timeout:.0f}s ({last})")


def group_names(url: str) -> list[str]:
    nodes = gql(url, "{ assetNodes { groupName } }", timeout=60)["assetNodes"]
    return sorted({n["groupName"] for n in nodes if n["groupName"]})


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass


class Page:
    """The one page of a headless Chromium, over the DevTools protocol (websockets, sync client)."""

    def __init__(self, ws):
        self.ws, self.next_id = ws, 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=120))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression: str):
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def key(self, key: str, code: str, vk: int, modifiers: int = 0) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call(
                "Input.dispatchKeyEvent",
                type=kind,
                modifiers=modifiers,
                key=key,
                code=code,
                windowsVirtualKeyCode=vk,
            )

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])


def wait_until(what: str, check, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


# Page scripts. The UI keeps these settings in localStorage (values JSON-encoded).
INIT_SCRIPT = """
try {
  // no "Join the community" dialog
  localStorage.setItem("communityNux", JSON.stringify("1"));
  localStorage.setItem("asset-graph-direction", JSON.stringify("vertical"));
} catch (e) {}
"""
GRAPH_STATE = """
(() => {
  const text = document.body ? document.body.innerText : "";
  const dialog = !!document.querySelector('[role="dialog"], .bp5-dialog, .bp4-dialog');
  const loading = /Loading…|Loading\\.\\.\\./.test(text)
    || !!document.querySelector('[role="progressbar"]');
  return {text, dialog, loading, href: location.href};
})()
"""
HIDE_NAV_AND_TREE = """
(() => {
  const done = [];
  const nav = [...document.querySelectorAll('button')]
    .find(b => b.textContent.trim() === 'Hide navigation');
  if (nav) { nav.click(); done.push('navigation'); }
  const jump = document.querySelector('input[placeholder^="Jump to"]');
  if (jump) {
    const r = jump.getBoundingClientRect();
    const toggle = [...document.querySelectorAll('button')].find(b => {
      const q = b.getBoundingClientRect();
      const middle = Math.abs((q.top + q.bottom) / 2 - (r.top + r.bottom) / 2);
      return q.left >= r.right && q.left < r.right + 60 && middle < 12;
    });
    if (toggle) { toggle.click(); done.push('asset tree'); }
  }
  return done;
})()
"""
SKIP_DIALOG = """
(() => {
  const skip = [...document.querySelectorAll('[role="dialog"] button, .bp5-dialog button')]
    .find(b => b.textContent.trim() === 'Skip');
  if (skip) { skip.click(); return true; }
  return false;
})()
"""


def find_chromium(explicit: str | None) -> str:
    for name in (
        [explicit] if explicit else ["chromium", "chromium-browser", "google-chrome", "chrome"]
    ):
        path = shutil.which(name) if name else None
        if path:
            return path
    raise SystemExit(
        "no Chromium found: apt-get update && apt-get install -y chromium (or pass --chromium)"
    )


@contextlib.contextmanager
def chromium_page(chromium: str, width: int, height: int, init_script: str = INIT_SCRIPT):
    """A headless Chromium at width x height, as a Page; the browser stops on leaving."""
    try:
        from websockets.sync.client import connect
    except ImportError:
        raise SystemExit(
            "this script needs the `websockets` package (pip install websockets)"
        ) from None

    profile = tempfile.mkdtemp(prefix="asset-graph-chromium-")
    browser = subprocess.Popen(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        devtools = None
        for line in browser.stderr:  # Chromium prints its DevTools endpoint first
            m = re.search(r"DevTools listening on ws://[^:/]+:(\d+)/", line)
            if m:
                devtools = f"http://127.0.0.1:{m.group(1)}"
                break
        if devtools is None:
            raise SystemExit(f"{chromium} exited ({browser.wait()}) without a DevTools endpoint")
        threading_drain(browser)
        targets = json.load(urllib.request.urlopen(f"{devtools}/json/list", timeout=10))
        target = next(t for t in targets if t["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as ws:
            page = Page(ws)
            page.call("Page.enable")
            page.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            page.call("Page.addScriptToEvaluateOnNewDocument", source=init_script)
            yield page
    finally:
        stop(browser)
        shutil.rmtree(profile, ignore_errors=True)


def settled_screenshot(page: Page, timeout: float) -> bytes:
    """The page once two screenshots a second and a half apart are identical."""
    previous, shot = None, None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1.5)
        shot = page.screenshot()
        if shot == previous:
            return shot
        previous = shot
    say("warning: the page never settled; writing the last screenshot")
    return shot


def write_png(shot: bytes, output: Path) -> None:
    w, h = struct.unpack(">II", shot[16:24])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(shot)
    say(f"wrote {output} ({w}x{h}, {len(shot):,} bytes)")


def skip_dialog_or(page: Page, ready) -> bool:
    """ready(state) on the page's state, after skipping the community dialog if it is open."""
    s = page.eval(GRAPH_STATE) or {}
    if s.get("dialog"):
        page.eval(SKIP_DIALOG)
        return False
    return not s.get("loading") and bool(ready(s))


def shoot(url: str, output: Path, chromium: str, width: int, height: int, timeout: float) -> None:
    groups = group_names(url)
    say(f"asset groups: {', '.join(groups)}")
    with chromium_page(chromium, width, height) as page:
        page.call("Page.navigate", url=f"{url.rstrip('/')}/asset-groups")

        def graph_drawn():
            return skip_dialog_or(page, lambda s: all(g in s.get("text", "") for g in groups))

        wait_until("the asset graph to load", graph_drawn, timeout)
        say(f"hid: {', '.join(page.eval(HIDE_NAV_AND_TREE)) or 'nothing'}")
        time.sleep(1)
        if "expanded=" not in page.eval("location.href"):
            page.key("e", "KeyE", 69, modifiers=1)  # Alt+E: expand all groups (and fit to width)
        wait_until("the groups to expand", lambda: "expanded=" in page.eval("location.href"), 30)
        wait_until("the expanded graph", graph_drawn, timeout)
        shot = settled_screenshot(page, timeout)
    write_png(shot, output)


def threading_drain(proc: subprocess.Popen) -> None:
    """Keep reading Chromium's stderr so a full pipe never blocks it."""
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()


def serve_demo_lake(args, tmp: Path) -> tuple[str, subprocess.Popen]:
    lake = Path(args.lake_root).resolve() if args.lake_root else tmp / "lake"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_") and k != "DAGSTER_HOME"}
    env["DAGSTER_HOME"] = str(lake / "_dagster")  # where `lake-assets demo` records its runs
    (lake / "_dagster").mkdir(parents=True, exist_ok=True)
    yaml = lake / "_dagster" / "dagster.yaml"
    if not yaml.exists():
        yaml.write_text("telemetry:\n  enabled: false\n")
    if not args.no_demo:
        say(f"building the demo lake at {lake} (lake-assets demo --days {args.days}) ...")
        started = time.monotonic()
        demo = subprocess.run(
            [
                sys.executable,
                "-m",
                "lake_assets.cli",
                "demo",
                "--lake-root",
                str(lake),
                "--days",
                str(args.days),
            ],
            env=env,
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if demo.returncode != 0:
            say(demo.stdout[-3000:])
            say(f"warning: lake-assets demo exited {demo.returncode}; shooting the graph anyway")
        say(f"demo done in {time.monotonic() - started:.0f}s")
    env.update(LAKE_ROOT=str(lake), LAKE_LANDING=str(lake / "landing"))
    port = free_port()
    log = open(tmp / "webserver.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-w",
            str(REPO / "workspace.yaml"),  # the code location as `lake_assets`
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return f"http://127.0.0.1:{port}", proc


def parser(description: str, output: Path) -> argparse.ArgumentParser:
    """The options every screenshot script of this directory takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--url", help="a running Dagster webserver (default: build a demo lake and start one)"
    )
    p.add_argument(
        "--lake-root", help="without --url: the lake to build and serve (default: a new temp dir)"
    )
    p.add_argument(
        "--days", type=int, default=21, help="without --url: days of demo history (default 21)"
    )
    p.add_argument(
        "--no-demo",
        action="store_true",
        help="without --url: serve --lake-root as it is, no demo run",
    )
    p.add_argument("--output", default=str(output))
    p.add_argument("--chromium", help="Chromium executable (default: chromium on PATH)")
    p.add_argument("--width", type=int, default=1600)
    p.add_argument("--height", type=int, default=1000)
    p.add_argument(
        "--timeout",
        type=float,
        default=180,
        help="seconds for the webserver and for the page (each)",
    )
    return p


def run(p: argparse.ArgumentParser, argv: list[str] | None, shoot_page) -> int:
    """Parse argv, serve a demo lake unless --url, and shoot_page(url, output, chromium, ...)."""
    args = p.parse_args(argv)
    if args.no_demo and not args.lake_root:
        p.error("--no-demo needs --lake-root")
    chromium = find_chromium(args.chromium)
    output = Path(args.output).resolve()
    if args.url:
        url = args.url.rstrip("/")
        wait_for_webserver(url, args.timeout)
        shoot_page(url, output, chromium, args.width, args.height, args.timeout)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="asset-graph-"))
    url, proc = serve_demo_lake(args, tmp)
    try:
        say(f"starting dagster-webserver at {url} ...")
        wait_for_webserver(url, args.timeout, proc)
        shoot_page(url, output, chromium, args.width, args.height, args.timeout)
    finally:
        stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)  # the lake too, unless --lake-root put it elsewhere
    return 0


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0], REPO / "docs" / "asset_graph.png")
    return run(p, argv, shoot)


if __name__ == "__main__":
    sys.exit(main())
