"""The library ships ``py.typed`` (PEP 561), so its type hints are part of its interface: mypy
must find them consistent (settings: pyproject.toml, [tool.mypy])."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("mypy")


def test_mypy_finds_the_library_consistent(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
    assert "Success" in r.stdout
