"""moto's S3 server on loopback, logging one line per request: method, target, client, seconds.

    python bench/moto_access_log.py -H 127.0.0.1 -p PORT

The same application `python -m moto.server` serves, wrapped to print, for every request,
`REQ <method> <target> <status> <user agent's first word> <seconds>` on stderr, so that a
benchmark can tell which client (the engine, delta-rs, pyarrow, boto3) made how many requests
of each kind and how long the server took to answer them.
"""

from __future__ import annotations

import argparse
import sys
import time
from urllib.parse import quote

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def logged(app):
    def wrapped(environ, start_response):
        started = time.perf_counter()
        status = ["-"]

        def start(code, headers, *rest):
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, *rest)

        try:
            return app(environ, start)
        finally:
            target = quote(environ.get("PATH_INFO", ""))
            if environ.get("QUERY_STRING"):
                target += "?" + environ["QUERY_STRING"]
            agent = (environ.get("HTTP_USER_AGENT") or "-").split(" ", 1)[0]
            print(
                f"REQ {environ['REQUEST_METHOD']} {target} {status[0]} {agent} "
                f"{time.perf_counter() - started:.4f}",
                file=sys.stderr,
                flush=True,
            )

    return wrapped


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, required=True)
    args = p.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        logged(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
