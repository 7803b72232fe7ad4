"""Sample real documentation in other languages, to measure the scanner's false
positives on ordinary text that is not English.

    python tests/data/injection/sample_multilingual.py [--cache /tmp/securerag-l10n]

The English benign corpus (`benign_corpus.jsonl`) has a held-out part on
which `scripts/evaluate_scanner.py` reports the false-positive rate on
ordinary documentation; this is the same measure in 28 other languages, from
Debian's translated documentation: the LibreOffice help (office software,
full of instructions to the reader: "choose Tools - Options", "enter your
password") and the translated man pages. The packages are fetched with
`apt-get download` into `--cache` and unpacked with `dpkg-deb -x`; nothing is
installed.

Writes `benign_multilingual.jsonl` (`{"id", "text", "lang", "source"}`): per
package, `PER_PACKAGE` chunks of 200-700 characters (consecutive prose
paragraphs of one page; translators' credits and other paragraphs found on
three pages or more left out), chosen by a hash of the text, so the selection
is stable for the same package versions, which are recorded. Evaluation only:
as extra training negatives they lowered the out-of-fold TPR (the model's
false positives on the hand-written hard negatives are no more frequent in
other languages than in English), so they were not trained on.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from corpus import troff  # noqa: E402  (bench/corpus.py: man(7) source to paragraphs)

# LibreOffice help languages, and man-page languages (Debian 12 package suffixes).
HELP = "cs da de el es et fi fr hi hu id it ja ko nl pl pt pt-br ru sl sv tr vi zh-cn zh-tw".split()  # noqa: SIM905
MAN = "cs da de el es fi fr hu id it ja mk nb nl pl pt-br ro ru sr sv tr uk vi zh".split()  # noqa: SIM905
PER_PACKAGE = 125
MIN_CHARS, MAX_CHARS = 200, 700
_ENGLISH = frozenset("the and of to is in for with that this are be or you your by on as can from it".split())  # noqa: SIM905
_PAGE_FURNITURE = re.compile(r"^(This page is:|Title is:)")
# Identifiers and code: dotted or underscored names, camelCase, calls, markup.
_IDENTIFIER = re.compile(r"\S*(?:\w[._/\\=<>{}]\w|[a-z][A-Z]|\(\))\S*")


def fetch(package: str, cache: Path) -> tuple[Path, str]:
    """Unpack `package` (downloading it once) under `cache`; its root and version."""
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True, capture_output=True)
        debs = sorted(cache.glob(f"{package}_*.deb"))
    root = cache / package
    if not root.exists():
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
    version = subprocess.run(
        ["dpkg-deb", "-f", str(debs[-1]), "Version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return root, version


def help_pages(root: Path) -> Iterator[tuple[str, list[str]]]:
    """(page, paragraphs) of LibreOffice help HTML."""
    from lxml import html

    for path in sorted(root.rglob("text/**/*.html")):
        page = html.parse(str(path)).getroot()
        paragraphs = [" ".join(p.text_content().split()) for p in page.iter("p")][1:]  # 1st: banner
        yield str(path.relative_to(root)), [p for p in paragraphs if p and not _PAGE_FURNITURE.match(p)]


def man_pages(root: Path) -> Iterator[tuple[str, list[str]]]:
    """(page, paragraphs) of translated man pages."""
    for path in sorted(root.rglob("man/*/man*/*.gz")):
        source = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
        blocks = re.split(r"\n\s*\n", troff(source))
        yield str(path.relative_to(root)), [" ".join(b.split()) for b in blocks if b.strip()]


def is_prose(text: str) -> bool:
    """Mostly letters, little code, and not English left untranslated."""
    ink = text.replace(" ", "")
    if not ink or sum(ch.isalpha() for ch in ink) < 0.6 * len(ink):
        return False
    code = sum(len(m.group()) for m in _IDENTIFIER.finditer(text))
    if code > 0.25 * len(ink):
        return False
    words = text.lower().split()
    return sum(w in _ENGLISH for w in words) < 0.08 * len(words)


def boilerplate(pages: list[tuple[str, list[str]]]) -> set[str]:
    """Paragraphs found on three pages or more: translators' credits, licence notes."""
    seen: dict[str, int] = {}
    for _, paragraphs in pages:
        for p in set(paragraphs):
            seen[p] = seen.get(p, 0) + 1
    return {p for p, n in seen.items() if n >= 3}


def pack(paragraphs: list[str]) -> list[str]:
    """Consecutive prose paragraphs joined into chunks of MIN_CHARS-MAX_CHARS characters."""
    chunks: list[str] = []
    current: list[str] = []
    for p in paragraphs:
        if not is_prose(p) or len(p) > MAX_CHARS:
            if sum(map(len, current)) >= MIN_CHARS:
                chunks.append("\n".join(current))
            current = []
            continue
        if current and sum(map(len, current)) + len(p) > MAX_CHARS:
            if sum(map(len, current)) >= MIN_CHARS:
                chunks.append("\n".join(current))
            current = []
        current.append(p)
    if sum(map(len, current)) >= MIN_CHARS:
        chunks.append("\n".join(current))
    return chunks


def _hash(text: str) -> int:
    return int(hashlib.blake2b(text.encode(), digest_size=8).hexdigest(), 16)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/securerag-l10n"))
    parser.add_argument("--out", type=Path, default=HERE / "benign_multilingual.jsonl")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    taken: set[str] = set()
    for kind, langs, pages in (("libreoffice-help", HELP, help_pages), ("manpages", MAN, man_pages)):
        for lang in langs:
            package = f"{kind}-{lang}"
            root, version = fetch(package, args.cache)
            found = list(pages(root))
            common = boilerplate(found)
            pool = {  # each text once, also across packages (pt and pt-br share pages)
                chunk: page
                for page, paragraphs in found
                for chunk in pack([p for p in paragraphs if p not in common])
                if chunk not in taken
            }
            for key, text, page in sorted((_hash(t), t, page) for t, page in pool.items())[:PER_PACKAGE]:
                taken.add(text)
                rows.append(
                    {
                        "id": f"{package}:{key:016x}",
                        "text": text,
                        "lang": lang,
                        "source": f"{package} {version}: {page}",
                    }
                )
            print(f"{package} {version}: {len(pool)} chunks")
    with args.out.open("w") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
