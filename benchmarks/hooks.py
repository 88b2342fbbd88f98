"""The event hooks' benchmark: how soon an event reaches a URL, and how many per second.

    python -m benchmarks.hooks [--events 500] [--singles 20] [--ledger-entries 0]

A hook's worker (exchanged.daemon.hooks) over a real ledger, POSTing to a local HTTP
server: the delay from an event's ledger entry to its POST (bounded by the worker's
poll, POLL_SECONDS), and the rate at which a backlog is delivered, each delivery
recorded as ``hook.delivered`` (a durable ledger append). ``--ledger-entries`` fills
the ledger first, to show that a hook's look at it does not grow with its size.
Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchmarks.ledger import fill
from exchanged.daemon.hooks import POLL_SECONDS, HookWorker
from exchanged.home.hooksettings import HookSettings
from exchanged.ledger import Ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--ledger-entries", type=int, default=0)
    args = parser.parse_args()
    arrivals: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            arrivals.append(time.monotonic())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = Path(tempfile.mkdtemp(prefix="bench-hooks-"))
    ledger = Ledger(root / "ledger.db")
    ledger.create(exchange_name="bench")
    if args.ledger_entries:
        fill(ledger, args.ledger_entries)
    hook = HookSettings("bench", ("batch.answered",),
                        url=f"http://127.0.0.1:{server.server_address[1]}/")
    stop = threading.Event()
    worker = HookWorker(hook, ledger, (1.0,), "bench", stop)
    worker.prepare()
    worker.start()
    try:
        delays = []
        for i in range(args.singles):
            seen, started = len(arrivals), time.monotonic()
            ledger.append("batch.answered", agency="bkn", flow="asn-register", batch=f"s{i}",
                          uid=f"s{i}", outcome="result")
            while len(arrivals) == seen:
                time.sleep(0.002)
            delays.append(arrivals[-1] - started)
        seen, started = len(arrivals), time.monotonic()
        for i in range(args.events):
            ledger.append("batch.answered", agency="bkn", flow="asn-register", batch=f"b{i}",
                          uid=f"b{i}", outcome="result")
        appended = time.monotonic() - started
        while len(arrivals) < seen + args.events:
            time.sleep(0.01)
        backlog = time.monotonic() - started
    finally:
        stop.set()
        worker.join(5)
        server.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    figures = {
        "poll_seconds": POLL_SECONDS, "ledger_entries": args.ledger_entries,
        "single_delay_median_s": round(statistics.median(delays), 3),
        "single_delay_max_s": round(max(delays), 3),
        "events": args.events, "appended_s": round(appended, 2),
        "delivered_s": round(backlog, 2), "per_second": round(args.events / backlog, 1),
    }
    print(f"one event reaches its URL in {figures['single_delay_median_s']} s (median), "
          f"{figures['single_delay_max_s']} s at most; {args.events} events delivered and "
          f"recorded in {figures['delivered_s']} s ({figures['per_second']}/s)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
