"""Load: several agencies uploading many batches at once over real SFTP, each answered once.

The full benchmark (20 agencies x 50 batches) is ``python -m benchmarks.load``; this is
its small version, run with the slow tests.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from benchmarks import load as loadbench


@pytest.mark.slow
def test_many_agencies_at_once_every_batch_answered_exactly_once() -> None:
    # a short path: gpg-agent's sockets live in the agencies' GnuPG homes
    root = Path(tempfile.mkdtemp(prefix="exl-"))
    try:
        figures = loadbench.run(root, agencies=5, batches=10, rows=200, register_rows=5000)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures, sort_keys=True))
    assert figures["ok"], figures
    assert figures["batches"] == figures["answered"] == 50
    assert figures["missing"] == figures["answered_twice"] == figures["refused"] == 0
    assert figures["outcome_files_wrong"] == 0
    assert 0 < figures["latency_p50_s"] <= figures["latency_p95_s"] <= figures["latency_max_s"]
    assert figures["throughput_batches_per_s"] > 0
