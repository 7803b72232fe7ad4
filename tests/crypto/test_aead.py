"""The AEAD, the master key and the envelope keyring."""

from __future__ import annotations

import base64
import os
import stat
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securerag.config import Settings
from securerag.crypto.aead import OVERHEAD, Aead, DataKey, encode_aad, sealed_key_id
from securerag.crypto.master import LocalKeyProvider, ensure_key_file, load_key_provider
from securerag.errors import ConfigError, DecryptionError, NotInitialized

KEY = DataKey(uuid.UUID(int=7), b"\x01" * 32)


@given(plaintext=st.binary(max_size=4096), aad=st.binary(max_size=256))
def test_seal_open_round_trip(plaintext: bytes, aad: bytes) -> None:
    """Whatever is sealed opens to the same bytes under the same AAD."""
    aead = Aead(KEY)
    sealed = aead.seal(plaintext, aad=aad)
    assert len(sealed) == len(plaintext) + OVERHEAD
    assert aead.open(sealed, aad=aad) == plaintext


@given(
    plaintext=st.binary(min_size=1, max_size=512), aad=st.binary(max_size=64), other=st.binary(max_size=64)
)
def test_wrong_aad_fails(plaintext: bytes, aad: bytes, other: bytes) -> None:
    """A ciphertext does not open under any other AAD."""
    sealed = Aead(KEY).seal(plaintext, aad=aad)
    if other != aad:
        with pytest.raises(DecryptionError):
            Aead(KEY).open(sealed, aad=other)


@given(data=st.data())
def test_any_flipped_bit_fails(data: st.DataObject) -> None:
    """Flipping any single bit anywhere in the sealed bytes makes opening fail."""
    sealed = bytearray(Aead(KEY).seal(b"quarterly numbers", aad=b"row-1"))
    index = data.draw(st.integers(0, len(sealed) - 1))
    sealed[index] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(DecryptionError):
        Aead(KEY).open(bytes(sealed), aad=b"row-1")


def test_other_key_fails_and_key_id_travels() -> None:
    """The key id is in the ciphertext, and another key cannot open it."""
    sealed = Aead(KEY).seal(b"x", aad=b"")
    assert sealed_key_id(sealed) == KEY.id
    other = DataKey(KEY.id, b"\x02" * 32)  # same id, different material
    with pytest.raises(DecryptionError):
        Aead(other).open(sealed, aad=b"")


def test_nonces_never_repeat() -> None:
    """Sealing the same plaintext twice gives different ciphertexts."""
    aead = Aead(KEY)
    assert len({aead.seal(b"same", aad=b"") for _ in range(200)}) == 200


def test_key_material_not_in_repr() -> None:
    """Key-bearing objects hide their material."""
    assert "\\x01" not in repr(KEY)
    assert "material" not in repr(KEY)
    assert "kkkk" not in repr(LocalKeyProvider(b"k" * 32))


@given(a=st.lists(st.text(max_size=8), max_size=4), b=st.lists(st.text(max_size=8), max_size=4))
def test_aad_encoding_is_injective(a: list[str], b: list[str]) -> None:
    """Different field lists never encode to the same AAD."""
    if a != b:
        assert encode_aad(*a) != encode_aad(*b)


def test_key_file_created_0600_and_loaded(tmp_path: Path) -> None:
    """`init` creates the key file with mode 0600, once."""
    settings = Settings(home=tmp_path / "home")
    assert ensure_key_file(settings) is True
    assert ensure_key_file(settings) is False
    assert stat.S_IMODE(settings.key_file.stat().st_mode) == 0o600
    assert load_key_provider(settings).key_id == load_key_provider(settings).key_id


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    """A world-readable key file is refused with the fix in the message."""
    settings = Settings(home=tmp_path)
    ensure_key_file(settings)
    os.chmod(settings.key_file, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_key_provider(settings)


@pytest.mark.parametrize(
    ("value", "message"),
    [("not base64!", "base64"), (base64.b64encode(b"short").decode(), "32 bytes")],
    ids=["garbage", "short"],
)
def test_bad_master_key_env(tmp_path: Path, value: str, message: str) -> None:
    """A malformed SECURERAG_MASTER_KEY is a configuration error naming the problem."""
    with pytest.raises(ConfigError, match=message):
        load_key_provider(Settings(home=tmp_path, master_key=value))


def test_missing_key_says_run_init(tmp_path: Path) -> None:
    """With no key configured and no file, the error says how to fix it."""
    with pytest.raises(NotInitialized, match="securerag init"):
        load_key_provider(Settings(home=tmp_path))
