"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exchanged.crypto.keys import Keyring, create_gnupg_home


@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyring]:
    """A real GnuPG home with an exchange key pair (one per test module)."""
    home = tmp_path_factory.mktemp("kr") / "g"
    create_gnupg_home(home)
    ring = Keyring(home)
    ring.generate_exchange_key("Exchange Test", "test@exchanged.invalid", expire="1y")
    yield ring
    ring.stop_agent()
