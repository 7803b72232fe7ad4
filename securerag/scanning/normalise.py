"""Undo the tricks that hide an instruction from a pattern or a classifier.

`normalise` turns one text into the views the detectors read:

- `text`: NFKC, invisible characters (zero-width, bidi controls, Unicode
  tags) removed, whitespace runs collapsed: what a reader sees.
- `views`: the same text with homoglyphs folded to Latin, leetspeak and
  spaced letters folded, plus every hidden or encoded part found inside it
  (HTML comments and hidden elements, markdown comments, Unicode tag text,
  base64 / hex / URL-encoded runs, a rot13 reading when that reads more like
  English than the text), each tagged with how it
  was found so that a verdict can say why. Hidden and decoded parts are read
  as written and folded, and runs inside hidden markup are decoded too.
- `squashed`: letters only, lower case, for the few phrases worth catching
  whatever was put between their letters.
- `signals`: counts of what was removed or decoded (zero-width characters,
  tag characters, homoglyphs folded, runs decoded).

Everything is bounded: at most `MAX_DECODED` runs are decoded, nested
encodings are followed `MAX_DEPTH` levels deep, and no view is longer than the
input (decoding shrinks).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass, field
from functools import cache, lru_cache, partial
from typing import Any

import re2

MAX_DECODED = 16
MAX_DEPTH = 2

# Zero-width and formatting characters a reader never sees. Category Cf covers
# ZWSP/ZWNJ/ZWJ, word joiner, BOM, bidi controls, soft hyphen and tag characters.
_TAG_BASE = 0xE0000
_TAG_RANGE = range(0xE0020, 0xE007F)  # TAG SPACE .. TAG TILDE carry ASCII
_WS = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class View:
    """One reading of the text and where it came from (`folded`, `base64`, `html-hidden`, ...)."""

    origin: str
    text: str


@dataclass(slots=True)
class Normalised:
    """What the detectors read."""

    text: str
    views: list[View] = field(default_factory=list)
    squashed: str = ""
    signals: dict[str, int] = field(default_factory=dict)

    def count(self, signal: str, n: int = 1) -> None:
        if n:
            self.signals[signal] = self.signals.get(signal, 0) + n

    def add_view(self, origin: str, text: str) -> bool:
        """Add a reading unless it is empty or already read; say whether it was added."""
        text = text.strip()
        if text and text != self.text and all(v.text != text for v in self.views):
            self.views.append(View(origin, text))
            return True
        return False

    def add_reading(self, origin: str, text: str) -> bool:
        """A hidden or decoded part, read as written and folded like the text itself, so that
        homoglyphs, leetspeak or spaced letters inside it are no way around the folding."""
        added = self.add_view(origin, text)
        for folded in folded_readings(text)[0]:
            self.add_view(origin, folded)
        return added


# -- invisible characters -------------------------------------------------------------


# Printable ASCII, newline, tab and carriage return are never invisible: only the rest is
# looked at one character at a time.
_NOT_PLAIN = re.compile(r"[^\x20-\x7e\n\t\r]")

# Unicode's Default_Ignorable_Code_Point characters (DerivedCoreProperties.txt) that are not
# format characters (those are all removed): a renderer draws nothing for them, so between the
# letters of a word they hide it from every pattern. The Hangul fillers are letters to
# Unicode, the grapheme joiner and the Khmer inherent vowels combining marks; the rest is
# unassigned, reserved as ignorable. Counted as zero-width characters.
_IGNORABLE = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, *range(0xFFF0, 0xFFF9)}
    | set(range(0xE0080, 0xE0100))
    | set(range(0xE01F0, 0xE1000))
)
# Variation selectors: ignorable too, and removed, but not counted: one follows most emoji.
_VARIATION_SELECTORS = frozenset(
    {0x180B, 0x180C, 0x180D, 0x180F, *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)}
)


def _invisible(ch: str) -> bool:
    cp = ord(ch)
    return cp in _IGNORABLE or cp in _VARIATION_SELECTORS or unicodedata.category(ch) == "Cf"


def _invisible_run(text: str, start: int, end: int) -> tuple[int, bool]:
    """The end of the run of invisible characters holding `text[start:end]`, and whether the
    visible characters either side of it are letters or digits."""
    while start > 0 and _invisible(text[start - 1]):
        start -= 1
    while end < len(text) and _invisible(text[end]):
        end += 1
    return end, start > 0 and end < len(text) and text[start - 1].isalnum() and text[end].isalnum()


def _strip_invisible(text: str, out: Normalised) -> str:
    """Remove what a reader cannot see. Zero-width and other ignorable characters are counted
    where they sit inside a word, which is where they hide one from a pattern: a joiner between
    two emoji, a byte-order mark at the start or a soft hyphen (a hyphenation hint) is not."""
    tags: list[str] = []
    zero_width = 0
    run_end, run_inside = 0, False  # the run of invisible characters last looked at

    def inside_word(match: re.Match[str]) -> bool:
        nonlocal run_end, run_inside
        if match.start() >= run_end:  # each run is walked once, however long
            run_end, run_inside = _invisible_run(text, *match.span())
        return run_inside

    def visit(match: re.Match[str]) -> str:
        nonlocal zero_width
        ch = match.group()
        cp = ord(ch)
        if cp in _TAG_RANGE:
            tags.append(chr(cp - _TAG_BASE))
            return ""
        if cp in _VARIATION_SELECTORS:
            return ""
        if cp in _IGNORABLE:
            zero_width += inside_word(match)
            return ""
        category = unicodedata.category(ch)
        if category == "Cc" and ch.isspace():  # vertical tab, form feed, \x1c-\x1f, NEL
            return " "
        if category in ("Cf", "Cc"):
            zero_width += (
                category == "Cf"
                and not 0xE0000 <= cp <= 0xE007F
                and cp != 0xAD  # soft hyphen
                and inside_word(match)
            )
            return ""
        return ch

    kept = _NOT_PLAIN.sub(visit, text)
    out.count("zero_width", zero_width)
    hidden = "".join(tags)
    # Flag emoji (England, Scotland, Wales) spell short lowercase region codes in tags;
    # anything with spaces or more than a handful of letters is a message.
    if len(hidden) > 7 or " " in hidden:
        out.count("tag_characters", len(hidden))
        out.add_reading("unicode-tags", hidden)
    return kept


# -- homoglyphs, leetspeak, spaced letters ---------------------------------------------


@cache
def _confusables() -> dict[str, list[dict[str, str]]]:
    """The Unicode TR39 confusables, as data: each character's look-alikes (`{"c", "n"}`)."""
    from confusable_homoglyphs import utils

    table: dict[str, list[dict[str, str]]] = utils.load("confusables.json")
    return table


@cache
def _homoglyph_table() -> dict[str, str]:
    """Non-ASCII characters that look like one ASCII letter or digit (Unicode confusables),
    and what NFKC makes of them.

    Folding reads text after NFKC, and NFKC turns some listed look-alikes into characters
    the list does not map: the Greek lunate sigma `ϲ`, listed as a `c`, becomes the final
    sigma `ς`. So each look-alike's NFKC form maps to the same letter, unless the list
    gives that form a letter of its own.
    """
    table: dict[str, str] = {}
    for char, glyphs in _confusables().items():
        if len(char) != 1 or char.isascii():
            continue
        latin = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii() and g["c"].isalnum()]
        if latin:
            table[char] = latin[0]
    for char, letter in list(table.items()):
        nfkc = unicodedata.normalize("NFKC", char)
        if len(nfkc) == 1 and not nfkc.isascii():
            table.setdefault(nfkc, letter)
    return table


_NON_ASCII_LETTER = re.compile(r"[^\W\d_\x00-\x7f]")
_ASCII_LETTERS = re.compile(r"[A-Za-z]")


@cache
def _lookalike_patterns() -> tuple[Any, re.Pattern[str]]:
    """A look-alike anywhere (RE2: Python's `re` tests a class holding characters outside
    the Basic Multilingual Plane one by one, 15x slower); a word, counting look-alikes as
    letters. Some look-alikes are not word characters (`⏽` for `l`, `∨` for `v`, a Telugu
    sign for `o`): a word split at them would hide the disguised word from the folding.
    Only what NFKC leaves as it is can be in the text by then (a few hundred characters,
    not the list's thousand)."""
    stable = (ch for ch in _homoglyph_table() if unicodedata.normalize("NFKC", ch) == ch)
    chars = "".join(map(re.escape, sorted(stable)))
    return _hint(f"[{chars}]"), re.compile(f"(?:\\w|[{chars}])+")


@lru_cache(maxsize=4096)
def _is_latin(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")


def fold_homoglyphs(text: str, *, every_word: bool = False) -> tuple[str, int]:
    """Fold look-alike characters to Latin where they hide a Latin word.

    A look-alike is any character the Unicode confusables list (with what NFKC makes of
    it) gives one ASCII letter or digit, whatever its script: Cyrillic `о`, Greek `ρ`,
    small-capital `ᴏ`, the symbol `⏽`. A word is folded when it mixes Latin with
    look-alikes and nothing else (`іgnоrе`, `ignᴏre`, `a⏽l`), or when it is made only of
    look-alikes inside mostly Latin text. Cyrillic or Greek prose is left as it is: its
    own words are not disguised Latin; `every_word` folds those too (an extra reading, for an
    English order spelled in look-alikes inside a Russian document).
    """
    anywhere, word_pattern = _lookalike_patterns()
    if not anywhere.search(text):
        return text, 0
    foreign_letters = [ch for ch in _NON_ASCII_LETTER.findall(text) if ch.isalpha()]
    table = _homoglyph_table()
    ascii_letters = len(_ASCII_LETTERS.findall(text))
    letters = ascii_letters + len(foreign_letters)
    mostly_latin = ascii_letters + sum(map(_is_latin, foreign_letters)) >= 0.6 * letters
    folded = 0

    def fold(match: re.Match[str]) -> str:
        nonlocal folded
        word = match.group()
        if word.isascii():
            return word
        foreign = [ch for ch in word if ch in table or not _is_latin(ch)]
        if not foreign or not all(ch in table for ch in foreign):
            return word
        if len(foreign) == len(word) and not (mostly_latin or every_word):
            return word
        folded += len(foreign)
        return "".join(table.get(ch, ch) for ch in word)

    return word_pattern.sub(fold, text), folded


_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "i"}
)
# Words of 3-20 characters mixing letters with leet digits or symbols; longer runs are
# identifiers, hashes or encodings, which the decoders handle.
_LEET_WORD = re.compile(
    r"(?<![\w@$!|])(?=[\w@$!|]*[A-Za-z])(?=[\w@$!|]*[013457@$!|])[\w@$!|]{3,20}(?![\w@$!|])"
)


def _hint(pattern: str) -> Any:
    """An RE2 pattern for a necessary condition of a `re` pattern: RE2 scans a text in
    linear time, several times faster than `re` tries a pattern with lookarounds at every
    position, so the `re` pattern runs only on the texts the hint accepts. Classes are
    written out in Unicode (RE2's `\\w` and `\\s` are ASCII)."""
    options = re2.Options()
    options.never_capture = True
    return re2.compile(pattern, options)


# Hints (see `_hint`): a letter and a leet character in one run of word characters; a run
# of sixteen base64 characters; eight hex pairs.
_LEET_HINT = _hint(r"[A-Za-z][\pL\pN_@$!|]*[013457@$!|]|[013457@$!|][\pL\pN_@$!|]*[A-Za-z]")
_SPACED = re.compile(r"(?<!\S)(?:[^\W_][ .\-_*·•]{1,2}){3,}[^\W_](?!\S)")


def fold_leet(text: str) -> tuple[str, int]:
    """`1gn0r3 4ll` -> `ignore all` in words that mix letters with leet digits or symbols."""
    if _LEET_HINT.search(text) is None:
        return text, 0
    count = 0

    def fold(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return match.group().translate(_LEET)

    return _LEET_WORD.sub(fold, text), count


def fold_spaced(text: str) -> tuple[str, int]:
    """`i g n o r e  a l l` -> `ignore all`: letters joined, wider gaps kept as word breaks."""
    count = 0

    def fold(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        words = re.split(r"[ .\-_*·•]{2,}", match.group())
        return " ".join(re.sub(r"[ .\-_*·•]", "", w) for w in words)

    return _SPACED.sub(fold, text), count


# -- hidden markup --------------------------------------------------------------------------

_HTML_HINT = re.compile(r"<!--|<[a-zA-Z][\w-]*(?:\s[^<>]*)?>")
_MD_COMMENT = re.compile(r"^\s*\[(?://|comment|_)\]:\s*(?:#|<>)\s*[\"'(]?(.*?)[\"')]?\s*$", re.MULTILINE)


_BOGUS_END_TAG = re.compile(r"</[^a-z]", re.IGNORECASE)


def _may_hide(markup: str) -> bool:
    """Whether `markup` has anything `extract_html` reads as hidden: a comment (of any of
    the forms an HTML parser accepts), an attribute
    named or valued `hidden` (`hidden`, `aria-hidden`, `type=hidden`) or a `style`. Attribute
    names are never entity-encoded and values are decoded here first, so this never
    says no to markup that hides something; it spares the HTML parser the rest."""
    plain = html.unescape(markup).lower()
    return (
        "hidden" in plain
        or "style" in plain
        # Comments, and what HTML parsers read as comments: `<!...>`, `<?...>`, `</` + non-letter.
        or "<!" in plain
        or "<?" in plain
        or _BOGUS_END_TAG.search(plain) is not None
        # Before decoding too: `</&#104;` is a comment to the parser, `</h` once decoded.
        or _BOGUS_END_TAG.search(markup) is not None
    )


def _hidden_markup(text: str, out: Normalised) -> str:
    """Add what markup hides as readings; return it, for its encoded runs to be decoded."""
    hidden: list[str] = []
    for match in _MD_COMMENT.finditer(text):
        out.count("markdown_comment")
        out.add_reading("markdown-comment", match.group(1))
        hidden.append(match.group(1))
    if _HTML_HINT.search(text) and _may_hide(text):
        from securerag.ingestion.html import extract_html

        parts = extract_html(text)
        if parts.hidden.strip():
            out.count("html_hidden")
            # Entities in the markup are decoded only now: the hidden text gets the same
            # NFKC and invisible-character pass as the text itself, and the same folding.
            clean = _basic(parts.hidden, out)
            out.add_reading("html-hidden", clean)
            hidden.append(clean)
    return "\n".join(hidden)


# -- encoded runs ---------------------------------------------------------------------------

_B64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:(?:\\x|0x)?[0-9A-Fa-f]{2}[\s:,]?){8,}(?![0-9A-Fa-f])")
_URLENC = re.compile(r"(?:%[0-9A-Fa-f]{2}|[\w.~+-]){0,200}(?:%[0-9A-Fa-f]{2}[\w.~+-]*){3,}")
_B64_HINT = _hint(r"[A-Za-z0-9+/_-]{16}")
_HEX_HINT = _hint(r"(?:(?:\\x|0x)?[0-9A-Fa-f]{2}[\s\x{0b}\pZ\x{1c}-\x{1f}\x{85}:,]?){8}")


def _readable(raw: bytes) -> str | None:
    """The decoded bytes as text if they read like language, else None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < 6:
        return None
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in text)
    letters = sum(ch.isalpha() for ch in text)
    # Half the non-space characters letters: spaced-out letters (`i g n o r e`) read too.
    ink = len(text) - text.count(" ")
    if printable < 0.95 * len(text) or letters < 0.5 * ink or " " not in text.strip():
        return None
    return text


def _decode_base64(run: str) -> str | None:
    body = run.rstrip("=")
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _readable(raw)


def _decode_hex(run: str) -> str | None:
    digits = re.sub(r"\\x|0x|[\s:,]", "", run)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        return _readable(bytes.fromhex(digits))
    except ValueError:
        return None


def _decode_runs(text: str, out: Normalised, depth: int) -> None:
    found: list[tuple[str, str]] = []
    for origin, hint, pattern, decode in (
        ("base64", _B64_HINT, _B64, _decode_base64),
        ("hex", _HEX_HINT, _HEX, _decode_hex),
    ):
        for match in pattern.finditer(text) if hint.search(text) else ():
            if len(found) >= MAX_DECODED:
                break
            decoded = decode(match.group())
            if decoded is not None:
                found.append((origin, decoded))
    for match in _URLENC.finditer(text) if "%" in text else ():
        if len(found) >= MAX_DECODED:
            break
        decoded = urllib.parse.unquote_plus(match.group())
        if decoded != match.group() and _readable(decoded.encode()) is not None:
            found.append(("url-encoded", decoded))
    for origin, decoded in found:
        clean = _basic(decoded, out)
        if out.add_reading(origin, clean):
            out.count(origin)
        if depth < MAX_DEPTH:
            _decode_runs(clean, out, depth + 1)


# -- the whole pass -------------------------------------------------------------------------


def fold(text: str) -> tuple[str, dict[str, int]]:
    """Homoglyphs, then leetspeak, then spaced letters folded; how many of each."""
    return _fold_letters(*fold_homoglyphs(text))


def _fold_letters(text: str, homoglyphs: int) -> tuple[str, dict[str, int]]:
    """`fold` after its homoglyph step."""
    folded, leet = fold_leet(text)
    folded, spaced = fold_spaced(folded)
    return folded, {"homoglyphs": homoglyphs, "leetspeak": leet, "spaced_letters": spaced}


@cache
def _l_patterns() -> tuple[Any, re.Pattern[str], frozenset[str]]:
    """For `read_l`: where to look (RE2: an `l`-like character after a letter, or one other than
    `I` and `1` before a letter), a run of `l`-like characters, and the set of them. `l`-like: what the
    confusables list gives as look-alikes of `l` (`I`, `1`, `|`, `Ӏ`, `Ⅰ`, `ǀ`, ...) as NFKC
    leaves them, and the small palochka `ӏ` (listed with `i`, drawn as `l`)."""
    chars = {"I", "1", "|", "ӏ"}
    for glyph in _confusables().get("l", []):
        nfkc = unicodedata.normalize("NFKC", glyph["c"])
        if len(nfkc) == 1 and nfkc != "l":
            chars.add(nfkc)
    every = "".join(map(re.escape, sorted(chars)))
    foreign = "".join(map(re.escape, sorted(chars - {"I", "1"})))
    return _hint(f"\\pL[{every}]|[{foreign}]\\pL"), re.compile(f"[{every}]+"), frozenset(chars)


def read_l(text: str) -> str:
    """`aӏӏ`, `aII`, `foӏӏow` -> `all`, `all`, `follow`: characters drawn like `l` read as `l` inside
    a lower-case word. The confusables list puts `l`, `I`, `1` and `|` in one class and folding
    must pick one letter for each; the pick is `i` or `I` for most of them, which makes `all`
    read `aii`. Only in words that are otherwise letters, lower case but for the first (not
    `getElementById`, base64 or hex), a run is read as `l` when a lower-case letter precedes it
    and one follows it, or when it ends a word of three or more (`all`, `tel1`) or holds more
    than `I` and `1` (`aӏ`, `a|`), or when, holding more than those, it starts the word before a
    lower-case letter (`ӏeak`); `v1`, `v1.2`, `APIs`, `AI` or the pronoun `I` stay."""
    where, run_pattern, l_like = _l_patterns()

    def in_word(ch: str) -> bool:
        return ch.isalnum() or ch == "_" or ch in l_like

    words: list[tuple[int, int]] = []  # each word holding a candidate, once, in order
    for match in where.finditer(text):
        start, end = match.span()
        if words and start < words[-1][1]:
            continue  # in the word just found: each character is walked over once
        while start > 0 and in_word(text[start - 1]):
            start -= 1
        while end < len(text) and in_word(text[end]):
            end += 1
        words.append((start, end))
    if not words:
        return text

    def read_run(word: str, run: re.Match[str]) -> str:
        start, end = run.span()
        after = word[end] if end < len(word) else ""
        foreign = bool(set(run.group()) - {"I", "1"})  # a bar or a non-ASCII letter: never an `I`
        if start:
            ends = not after and (end - start >= 2 or foreign or start >= 2)
            return "l" * (end - start) if after.islower() or ends else run.group()
        return "l" * (end - start) if foreign and after.islower() else run.group()

    pieces: list[str] = []
    done = 0
    for start, end in words:
        word = text[start:end]
        pieces.append(text[done:start])
        if (word[0] in l_like or word[0].isalpha()) and all(
            ch.isalpha() and ch.islower() for ch in word[1:] if ch not in l_like
        ):
            word = run_pattern.sub(partial(read_run, word), word)
        pieces.append(word)
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def folded_readings(text: str) -> tuple[list[str], dict[str, int]]:
    """What folding makes of `text`, and `fold`'s counts: its reading first, then the same with
    characters drawn like `l` read as `l` (`read_l`) and, where the text is not mostly Latin,
    with every word made only of look-alikes folded too; each only where it differs."""
    homoglyphs, n = fold_homoglyphs(text)
    first, counts = _fold_letters(homoglyphs, n)
    readings = [first]
    with_l = read_l(text)
    if with_l != text:
        readings.append(fold(with_l)[0])
    if _lookalike_patterns()[0].search(homoglyphs):  # look-alike words left as they were
        every, n = fold_homoglyphs(text, every_word=True)
        if every != homoglyphs:
            readings.append(_fold_letters(every, n)[0])
    return list(dict.fromkeys(readings)), counts


def _basic(text: str, out: Normalised) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _strip_invisible(text, out)
    text = _WS.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


_NON_LETTERS = re.compile(r"[^a-z]+")


_COMMON_ENGLISH = frozenset(
    {
        *("the", "and", "to", "of", "you", "your", "is", "are", "be", "this", "that", "it", "in"),
        *("for", "on", "with", "all", "any", "not", "now", "from", "ignore", "instructions"),
        *("system", "prompt", "previous", "tell", "send", "user"),
    }
)
_COMMON_ENGLISH_ROT13 = frozenset(codecs.encode(w, "rot13") for w in _COMMON_ENGLISH)
_ASCII_WORD = re.compile(r"[a-z]+")


def _reads_as_rot13(text: str) -> bool:
    """Whether the rot13 reading of `text` has more common English words than `text`
    itself (and at least two): only then is it worth reading. Counted on the text's own
    words (rot13 maps ASCII letters to ASCII letters, so the words are the same runs),
    without decoding it first."""
    words = _ASCII_WORD.findall(text.lower())
    english = sum(w in _COMMON_ENGLISH for w in words)
    return sum(w in _COMMON_ENGLISH_ROT13 for w in words) > max(english, 1)


def squash(text: str) -> str:
    """Letters only, lower case: `I.g-n o_r e` -> `ignore`."""
    return _NON_LETTERS.sub("", text.lower())


_SURROGATE = re.compile("[\ud800-\udfff]")


def normalise(text: str) -> Normalised:
    """Every view of `text` the detectors should read (see the module docstring)."""
    out = Normalised(text="")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (JSON can carry them): each becomes U+FFFD
        text, n = _SURROGATE.subn("\ufffd", text)
        out.count("invalid_unicode", n)
    out.text = _basic(text, out)
    hidden = _hidden_markup(out.text, out)

    readings, counts = folded_readings(out.text)
    for signal, n in counts.items():
        out.count(signal, n)
    for reading in readings:
        out.add_view("folded", reading)
    folded = readings[0]

    _decode_runs(out.text, out, depth=1)
    # Runs in hidden markup that only its entity decoding reveals (`&#97;&#87;...`).
    if hidden and hidden not in out.text:
        _decode_runs(hidden, out, depth=1)
    if _reads_as_rot13(out.text):
        out.add_view("rot13", codecs.decode(out.text, "rot13"))
    out.squashed = squash(folded)
    return out
