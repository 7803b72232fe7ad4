"""`securerag demo` on a fresh SECURERAG_HOME: the README's first command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_on_a_fresh_home(tmp_path: Path) -> None:
    """With nothing set up, the demo initialises everything and prints how answers differ."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURERAG_")}
    env["SECURERAG_HOME"] = str(tmp_path / "home")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "securerag", "demo"], env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "carrying an injection" in out
        for user in ("dana", "alice", "bob", "carol"):
            assert user in out
        rows = {
            line.split("│")[1].strip(): line
            for line in out.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()
        }
        # dana (public only) never sees the internal travel policy; bob sees the forecast.
        assert "Q3 Forecast" in out
        assert "Travel and Expenses" in out
        assert rows["alice"].split("│")[4].strip() == "1"  # the injected runbook chunk, withheld
        again = subprocess.run(
            [sys.executable, "-m", "securerag", "demo"], env=env, capture_output=True, text=True, timeout=600
        )
        assert again.returncode == 0
        assert "already holds the demo corpus" in again.stdout
        assert (tmp_path / "home" / "master.key").stat().st_mode & 0o777 == 0o600
    finally:
        subprocess.run(
            [sys.executable, "-m", "securerag", "db", "stop"], env=env, capture_output=True, timeout=120
        )
