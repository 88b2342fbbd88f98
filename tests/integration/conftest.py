"""Integration fixtures: a running exchange, agencies with real keys (see support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.support import Agency, Exchange, make_exchange, running


@pytest.fixture(scope="session")
def desks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AgencyDesk]]:
    """Key material for the agencies, made once per test session."""
    root = tmp_path_factory.mktemp("desks")
    out = {}
    for agency in ("kemensos", "bkn", "intruder"):
        desk = AgencyDesk(agency, root / agency)
        desk.create_keys()
        out[agency] = desk
    yield out
    for desk in out.values():
        stop_gpg_agent(desk.gnupg)




@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
             ) -> Iterator[Exchange]:
    """A running exchange with Kemensos and BKN registered and the agreement extended (example)."""
    with running(make_exchange(tmp_path_factory.mktemp("exchange"), desks)) as ex:
        yield ex


@pytest.fixture(scope="module")
def kemensos(exchange: Exchange, desks: dict[str, AgencyDesk]) -> Agency:
    return Agency(desks["kemensos"], exchange)


@pytest.fixture(scope="module")
def bkn(exchange: Exchange, desks: dict[str, AgencyDesk]) -> Agency:
    return Agency(desks["bkn"], exchange)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path
