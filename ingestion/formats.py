"""Readers for the structured formats: PDF, DOCX, HTML and JSON Lines.

Each returns the documents a file holds; a reader raises `InvalidInput` with
the reason when the file cannot be read, and a JSON Lines file reports each
bad line on its own while its good lines go on.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from securerag.errors import InvalidInput
from securerag.ingestion.html import extract_html
from securerag.ingestion.loaders import Skipped, SourceDocument, read_text
from securerag.models import Level, require_text, validate_collection, validate_subject

MAX_JSONL_RECORDS = 100_000


def load_html(path: Path) -> list[SourceDocument | Skipped]:
    """Visible text as the document; hidden text kept for the injection scanner."""
    parts = extract_html(read_text(path))
    return [
        SourceDocument(
            source=str(path),
            key=str(path),
            title=parts.title or path.stem,
            text=parts.visible,
            hidden=parts.hidden,
        )
    ]


def load_pdf(path: Path) -> list[SourceDocument | Skipped]:
    """Text of every page, pages separated by blank lines (pypdf)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-but-readable files warn loudly
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise InvalidInput("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        title = str(info.title).strip() if info is not None and info.title else ""
    except InvalidInput:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as exc:
        raise InvalidInput(f"not a readable PDF ({type(exc).__name__})") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    return [SourceDocument(source=str(path), key=str(path), title=title or path.stem, text=text)]


def load_docx(path: Path) -> list[SourceDocument | Skipped]:
    """Paragraphs (headings marked as Markdown headings) and table cells (python-docx)."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, ValueError, KeyError, OSError) as exc:
        raise InvalidInput(f"not a readable DOCX ({type(exc).__name__})") from None
    blocks: list[str] = []
    first_heading = ""
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith("Heading"):
            level = int(style.split()[-1]) if style.split()[-1].isdigit() else 1
            blocks.append(f"{'#' * min(level, 6)} {text}")
            first_heading = first_heading or text
        else:
            blocks.append(text)
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells if cell.text.strip()]
            if cells:
                blocks.append(" | ".join(cells))
    title = (document.core_properties.title or "").strip() or first_heading or path.stem
    return [SourceDocument(source=str(path), key=str(path), title=title, text="\n\n".join(blocks))]


def _record(path: Path, number: int, record: Any) -> SourceDocument:
    if not isinstance(record, dict):
        raise InvalidInput("expected a JSON object")
    unknown = set(record) - {"id", "text", "title", "collection", "acl", "classification"}
    if unknown:
        raise InvalidInput(f"unknown fields {sorted(unknown)}")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("'text' must be a non-empty string")
    title = record.get("title", "")
    if not isinstance(title, str):
        raise InvalidInput("'title' must be a string")
    collection = record.get("collection")
    if collection is not None and not isinstance(collection, str):
        raise InvalidInput("'collection' must be a string")
    acl = record.get("acl")
    if acl is not None and (not isinstance(acl, list) or not all(isinstance(a, str) for a in acl)):
        raise InvalidInput("'acl' must be a list of user and role names")
    level = record.get("classification")
    if level is not None and not isinstance(level, str):
        raise InvalidInput("'classification' must be a string")
    ident = record.get("id", number)
    if not isinstance(ident, str | int) or isinstance(ident, bool):
        raise InvalidInput("'id' must be a string or an integer")
    for subject in acl or []:
        validate_subject(subject)
    return SourceDocument(
        source=f"{path}:{number}",
        key=f"{path}#{ident}",
        title=require_text(title, "the title") or f"{path.stem} {ident}",
        text=require_text(text, "the text"),
        collection=validate_collection(collection) if collection is not None else None,
        acl=tuple(acl) if acl is not None else None,
        classification=None if level in (None, "auto") else Level.parse(str(level)),
    )


def load_jsonl(path: Path) -> list[SourceDocument | Skipped]:
    """One document per line: `{"text", "title"?, "collection"?, "acl"?, "classification"?, "id"?}`.

    A bad line is reported (as a failed `Skipped` naming its line) and the others are kept.
    """
    out: list[SourceDocument | Skipped] = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        if number > MAX_JSONL_RECORDS:
            out.append(Skipped(path, f"more than {MAX_JSONL_RECORDS} lines; the rest is ignored", True))
            break
        try:
            out.append(_record(path, number, json.loads(line)))
        except json.JSONDecodeError as exc:
            out.append(Skipped(Path(f"{path}:{number}"), f"not JSON ({exc.msg})", True))
        except InvalidInput as exc:
            out.append(Skipped(Path(f"{path}:{number}"), str(exc), True))
    return out
