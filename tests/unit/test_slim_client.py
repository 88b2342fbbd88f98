"""The agency's client imports without the server's packages (pyproject's `server` extra).

The real proof installs the client alone into a fresh environment
(tests/integration/test_wheel.py, slow); this is the quick guard: the same imports with
those packages made unimportable.
"""

from __future__ import annotations

import subprocess
import sys

from exchanged.cli import SERVER_PACKAGES

BLOCK = """
import importlib.abc, sys
SERVER = set({server!r})
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in SERVER:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Block())
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK.format(server=sorted(SERVER_PACKAGES))
                           + code], capture_output=True, text=True, timeout=60, check=False)


def test_the_client_and_the_command_line_import_without_the_server_packages() -> None:
    r = run("import exchanged.cli, exchanged.client\n"
            "from exchanged.cli import build_parser\n"
            "build_parser().parse_args(['submit', '--server', 'h:1', '--agency', 'a',\n"
            "    '--ssh-key', 'k', '--flow', 'f', 'x.csv'])\n"
            "loaded = {m.split('.')[0] for m in sys.modules} & SERVER\n"
            "assert not loaded, loaded\n")
    assert r.returncode == 0, r.stderr


def test_a_server_command_says_what_is_missing() -> None:
    r = run("from exchanged.cli import main\n"
            "sys.exit(main(['run', '--home', '/nonexistent-home']))\n")
    assert r.returncode == 2
    assert r.stderr.strip().startswith("exchanged: this command needs the server's packages")
    assert "exchanged[server]" in r.stderr and len(r.stderr.strip().splitlines()) == 1
