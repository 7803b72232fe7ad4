"""Reading files into documents. One bad file never stops the others.

Supported: `.txt`, `.md`/`.markdown`, `.html`/`.htm`, `.pdf`, `.docx`,
`.jsonl` (one document per line). Anything else is skipped with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from securerag.errors import InvalidInput
from securerag.models import Level

MAX_FILE_BYTES = 50 * 1024 * 1024

_MD_TITLE = re.compile(r"^\s*#\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """Text read from a file, ready to chunk."""

    source: str
    """Where it came from, for citations (a path, or path:line for JSON Lines)."""
    key: str
    """Its identity across runs: re-ingesting the same key updates the same document."""
    title: str
    text: str
    hidden: str = ""
    """Text a reader never sees (HTML comments, hidden elements): scanned, not stored."""
    collection: str | None = None
    """Per-document overrides (JSON Lines); None means the command's value."""
    acl: tuple[str, ...] | None = None
    classification: Level | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file (or JSON line) that was not ingested, and why."""

    path: Path
    reason: str
    failed: bool
    """True for input that should have loaded (an error), False for an unsupported type."""


Loader = Callable[[Path], list[SourceDocument | Skipped]]


def read_text(path: Path) -> str:
    """The file as UTF-8 text (a BOM is dropped); `InvalidInput` if it is not text."""
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


def _load_text(path: Path) -> list[SourceDocument | Skipped]:
    return [SourceDocument(source=str(path), key=str(path), title=path.stem, text=read_text(path))]


def _load_markdown(path: Path) -> list[SourceDocument | Skipped]:
    text = read_text(path)
    heading = _MD_TITLE.search(text)
    title = heading.group(1).strip() if heading else path.stem
    return [SourceDocument(source=str(path), key=str(path), title=title, text=text)]


def _loaders() -> dict[str, Loader]:
    from securerag.ingestion import formats

    return {
        ".txt": _load_text,
        ".md": _load_markdown,
        ".markdown": _load_markdown,
        ".html": formats.load_html,
        ".htm": formats.load_html,
        ".pdf": formats.load_pdf,
        ".docx": formats.load_docx,
        ".jsonl": formats.load_jsonl,
    }


SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl")


def load_file(path: Path) -> list[SourceDocument | Skipped]:
    """The documents in one file (and, for JSON Lines, the lines that failed).

    Raises:
        InvalidInput: the file is of a supported type but cannot be read.
    """
    loader = _loaders().get(path.suffix.lower())
    if loader is None:
        raise InvalidInput(f"unsupported file type {path.suffix or '(none)'!r}")
    try:
        items = loader(path)
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc.strerror or type(exc).__name__}") from None
    return [i for i in items if isinstance(i, Skipped) or i.text.strip()]


def iter_files(paths: Iterable[Path]) -> Iterator[Path | Skipped]:
    """Files under `paths` (folders walked in sorted order, hidden entries skipped)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts) or not child.is_file():
                    continue
                if child.suffix.lower() in SUFFIXES:
                    yield child
                else:
                    yield Skipped(child, f"unsupported file type {child.suffix or '(none)'!r}", False)
        elif path.is_file():
            yield path
        else:
            yield Skipped(path, "no such file or folder", True)
