"""Reading files into documents. One bad file never stops the others."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from securerag.errors import InvalidInput

MAX_FILE_BYTES = 50 * 1024 * 1024

_MD_TITLE = re.compile(r"^\s*#\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """Text read from a file, ready to chunk."""

    source: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that was not ingested, and why."""

    path: Path
    reason: str
    failed: bool
    """True for a file that should have loaded (an error), False for an unsupported type."""


def _read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InvalidInput(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"not valid UTF-8 (byte {exc.start})") from None
    if "\x00" in text:
        raise InvalidInput("contains NUL bytes; not a text file")
    return text


def _load_text(path: Path) -> list[SourceDocument]:
    text = _read_text(path)
    return [SourceDocument(source=str(path), title=path.stem, text=text)]


def _load_markdown(path: Path) -> list[SourceDocument]:
    text = _read_text(path)
    heading = _MD_TITLE.search(text)
    title = heading.group(1).strip() if heading else path.stem
    return [SourceDocument(source=str(path), title=title, text=text)]


LOADERS = {".txt": _load_text, ".md": _load_markdown, ".markdown": _load_markdown}


def load_file(path: Path) -> list[SourceDocument]:
    """The documents in one file.

    Raises:
        InvalidInput: the file is of a supported type but cannot be read.
    """
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise InvalidInput(f"unsupported file type {path.suffix or '(none)'!r}")
    try:
        docs = loader(path)
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc.strerror or type(exc).__name__}") from None
    return [d for d in docs if d.text.strip()]


def iter_files(paths: Iterable[Path]) -> Iterator[Path | Skipped]:
    """Files under `paths` (folders walked in sorted order, hidden entries skipped)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts) or not child.is_file():
                    continue
                if child.suffix.lower() in LOADERS:
                    yield child
                else:
                    yield Skipped(child, f"unsupported file type {child.suffix or '(none)'!r}", False)
        elif path.is_file():
            yield path
        else:
            yield Skipped(path, "no such file or folder", True)
