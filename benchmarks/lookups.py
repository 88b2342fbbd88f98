"""Which structure answers "is this keyed NIK in the register?" fastest, and which parser
reads a CSV batch fastest (docs/performance.md).

``python -m benchmarks.lookups [--register N] [--queries N]`` builds N random
16-byte keyed values (what a snapshot holds), then looks up a batch of queries (3 %
of them present, as in a KPM batch) with each candidate: a Python ``set``, numpy
``searchsorted`` over the sorted values (what the exchange uses), Arrow's ``is_in``,
and, where installed, polars and DuckDB joins. It prints one line per candidate:
the time to build the structure from the values, the time to answer the queries,
and the peak memory the process reached. polars and DuckDB are not dependencies of
the exchange; install them in a scratch environment to include them.

``python -m benchmarks.lookups --csv FILE`` instead reads FILE with Python's
``csv`` module (row by row, as the first version did), Arrow's CSV reader, polars
(where installed), and the exchange's :class:`~exchanged.csvio.CsvReader` blocks,
and prints the wall time of each (all of a 2-core machine's cores may be used).
"""

from __future__ import annotations

import argparse
import importlib
import resource
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

Keys = npt.NDArray[np.uint64]


def python_set(table: Keys, queries: Keys) -> tuple[float, float, int]:
    start = time.perf_counter()
    values = {row.tobytes() for row in table}
    built = time.perf_counter() - start
    start = time.perf_counter()
    hits = sum(1 for row in queries if row.tobytes() in values)
    return built, time.perf_counter() - start, hits


def numpy_sorted(table: Keys, queries: Keys) -> tuple[float, float, int]:
    start = time.perf_counter()
    order = np.argsort(table[:, 0])
    hi, lo = table[order, 0], table[order, 1]
    built = time.perf_counter() - start
    start = time.perf_counter()
    q_order = np.argsort(queries[:, 0])
    at = np.empty(len(queries), dtype=np.int64)
    at[q_order] = np.searchsorted(hi, queries[q_order, 0])
    at = np.minimum(at, len(hi) - 1)
    hits = int(np.count_nonzero((hi[at] == queries[:, 0]) & (lo[at] == queries[:, 1])))
    return built, time.perf_counter() - start, hits


def _binary(keys: Keys) -> pa.Array:
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(keys),
                                                [None, pa.py_buffer(keys.tobytes())])


def arrow_is_in(table: Keys, queries: Keys) -> tuple[float, float, int]:
    start = time.perf_counter()
    values = _binary(table)
    built = time.perf_counter() - start
    start = time.perf_counter()
    found = pc.is_in(_binary(queries), value_set=values)
    return built, time.perf_counter() - start, int(pc.sum(found).as_py() or 0)


def polars_join(table: Keys, queries: Keys) -> tuple[float, float, int]:
    pl = importlib.import_module("polars")
    start = time.perf_counter()
    right = pl.DataFrame({"hi": table[:, 0], "lo": table[:, 1]})
    built = time.perf_counter() - start
    start = time.perf_counter()
    left = pl.DataFrame({"hi": queries[:, 0], "lo": queries[:, 1]})
    hits = left.join(right, on=["hi", "lo"], how="semi").height
    return built, time.perf_counter() - start, int(hits)


def duckdb_join(table: Keys, queries: Keys) -> tuple[float, float, int]:
    duckdb = importlib.import_module("duckdb")
    start = time.perf_counter()
    con = duckdb.connect()
    right = pa.table({"hi": table[:, 0], "lo": table[:, 1]})
    con.register("register", right)
    con.execute("CREATE TABLE reg AS SELECT * FROM register")
    built = time.perf_counter() - start
    start = time.perf_counter()
    con.register("batch", pa.table({"hi": queries[:, 0], "lo": queries[:, 1]}))
    hits = con.execute("SELECT count(*) FROM batch JOIN reg USING (hi, lo)").fetchone()[0]
    return built, time.perf_counter() - start, int(hits)


CANDIDATES: dict[str, Callable[[Keys, Keys], tuple[float, float, int]]] = {
    "numpy searchsorted": numpy_sorted,
    "arrow is_in": arrow_is_in,
    "polars semi-join": polars_join,
    "duckdb join": duckdb_join,
    "python set": python_set,
}


def read_csv_module(data: bytes) -> int:
    import csv
    import io
    return sum(1 for _ in csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8",
                                                      newline=""))) - 1


def read_arrow(data: bytes) -> int:
    import pyarrow.csv as pa_csv
    names = data[:data.index(b"\n")].decode().split(",")
    table = pa_csv.read_csv(pa.py_buffer(data), convert_options=pa_csv.ConvertOptions(
        column_types={n: pa.string() for n in names}, strings_can_be_null=False))
    return int(table.num_rows)


def read_polars(data: bytes) -> int:
    import io
    pl = importlib.import_module("polars")
    return int(pl.read_csv(io.BytesIO(data), infer_schema=False).height)


def read_blocks(data: bytes) -> int:
    import io

    from exchanged.csvio import CsvReader
    return sum(block.rows for block in CsvReader(io.BytesIO(data)).blocks(ahead=2))


def compare_parsers(path: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    for name, run in (("csv module, row by row", read_csv_module), ("arrow read_csv", read_arrow),
                      ("polars read_csv", read_polars),
                      ("exchanged CsvReader.blocks", read_blocks)):
        try:
            start = time.perf_counter()
            rows = run(data)
        except ModuleNotFoundError:
            print(f"{name:28s} not installed")
            continue
        print(f"{name:28s} {time.perf_counter() - start:6.2f} s  {rows} rows", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--register", type=int, default=6_000_000)
    parser.add_argument("--queries", type=int, default=1_000_000)
    parser.add_argument("--only", choices=list(CANDIDATES), help="one candidate, in this process")
    parser.add_argument("--csv", help="compare CSV parsers on this file instead")
    args = parser.parse_args()
    if args.csv:
        compare_parsers(args.csv)
        return 0
    if args.only is None:
        # one process each, so that each peak is its own
        for name in CANDIDATES:
            subprocess.run([sys.executable, "-m", "benchmarks.lookups", "--register",
                            str(args.register), "--queries", str(args.queries), "--only", name],
                           check=False)
        return 0
    rng = np.random.default_rng(1)
    table = rng.integers(0, 2**63, size=(args.register, 2), dtype=np.uint64)
    present = table[rng.integers(0, args.register, args.queries * 3 // 100)]
    queries = np.concatenate(
        [present, rng.integers(0, 2**63, size=(args.queries - len(present), 2), dtype=np.uint64)])
    rng.shuffle(queries)
    for name, run in CANDIDATES.items():
        if name != args.only:
            continue
        try:
            built, lookup, hits = run(table, queries)
        except ModuleNotFoundError:
            print(f"{name:20s} not installed")
            continue
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{name:20s} build {built:6.2f} s  lookup {lookup:6.3f} s  hits {hits}  "
              f"process peak {peak:7.0f} MB (the keys alone: {table.nbytes / 2**20:.0f} MB)",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
