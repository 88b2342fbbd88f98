"""config.yaml: answer compression per agency."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchanged.errors import ConfigError
from exchanged.home import Home, load_config
from exchanged.home.config import Config


def config(tmp_path: Path, text: str) -> Config:
    home = Home(tmp_path)
    for folder in (tmp_path, *(tmp_path / p for p in ("keys", "ledger"))):
        folder.mkdir(exist_ok=True)
    home.config_file.write_text(text)
    return load_config(home)


def test_answers_are_compressed_fast_unless_an_agency_says_otherwise(tmp_path: Path) -> None:
    assert Config().compress_level("kemensos") == 1
    one = config(tmp_path, "answer_compression: none\n")
    assert one.compress_level("kemensos") == one.compress_level("bkn") == 0
    each = config(tmp_path, "answer_compression: {bkn: best, default: default}\n")
    assert each.compress_level("bkn") == 9 and each.compress_level("kemensos") == 6
    only = config(tmp_path, "answer_compression: {kemensos: none}\n")
    assert only.compress_level("kemensos") == 0 and only.compress_level("bkn") == 1


@pytest.mark.parametrize("value", ["7", "zip", "{bkn: 3}", "{}", "[fast]"])
def test_an_unknown_compression_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="answer_compression must be one of"):
        config(tmp_path, f"answer_compression: {value}\n")
