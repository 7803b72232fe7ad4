"""Key rotation from the command line, on a fresh home with a master key file."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from securerag.config import Settings
from securerag.crypto.aead import KEY_BYTES
from securerag.crypto.master import load_key_provider, next_key_file, write_key_file
from securerag.crypto.secrets import rewrap_root
from securerag.db import Database
from securerag.errors import KeyNotFound
from securerag.runtime import Runtime
from securerag.tenants import find_tenant


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "securerag", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow
def test_master_and_data_key_rotation_end_to_end(tmp_path: Path) -> None:
    """After rotating the master key (once interrupted and resumed) and the data keys, documents,
    API keys and the audit trail all still work, and the old master key alone opens nothing."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURERAG_")}
    env["SECURERAG_HOME"] = str(home)
    try:
        _run(env, "init")
        (tmp_path / "doc.md").write_text("# Hotels\n\nThe hotel limit is 200 USD per night.\n")
        (tmp_path / "policy.csv").write_text(
            "p, bob, acme, collection:*, read\np, bob, acme, clearance:restricted, read\n"
        )
        _run(env, "ingest", str(tmp_path / "doc.md"), "--tenant", "acme", "--collection", "handbook")
        _run(env, "policy", "load", str(tmp_path / "policy.csv"), "--tenant", "acme")
        api_key = _run(env, "apikey", "create", "--tenant", "acme", "--user", "bob").stdout.strip()
        old_master = (home / "master.key").read_text()

        # Interrupt a master rotation halfway: new key written, only the root secret re-wrapped.
        settings = Settings(home=home)
        write_key_file(next_key_file(settings), os.urandom(KEY_BYTES))
        keys = load_key_provider(settings)
        with Database.from_settings(settings, keys).connect_admin() as admin, admin.transaction():
            assert rewrap_root(admin, keys)
        _run(env, "keys", "rotate-master")  # resumes and finishes
        assert not next_key_file(settings).exists()
        assert (home / "master.key").read_text() != old_master
        assert (home / "master.key.retired").read_text() == old_master

        _run(env, "keys", "rotate", "--tenant", "acme")
        answer = json.loads(
            _run(env, "query", "hotel limit", "--tenant", "acme", "--user", "bob", "--json").stdout
        )
        assert "200 USD" in answer["chunks"][0]["text"]
        assert "intact" in _run(env, "audit", "verify").stdout
        exported = [json.loads(line) for line in _run(env, "audit", "export").stdout.splitlines()]
        assert any(e["action"] == "keys.rotate-master" and e["tenant"] == "acme" for e in exported)

        rt = Runtime(Settings(home=home))
        with rt.connect() as conn:
            tenant, user = rt.api_keys.authenticate(conn, api_key)
            assert (tenant.name, user) == ("acme", "bob")
            assert find_tenant(conn, "acme").id == tenant.id
        old = base64.b64decode(old_master)
        with pytest.raises(KeyNotFound, match="wrapped by master key"):
            Runtime(Settings(home=home, master_key=base64.b64encode(old).decode()))
    finally:
        subprocess.run(
            [sys.executable, "-m", "securerag", "db", "stop"], env=env, capture_output=True, timeout=120
        )
