"""Mentioned, not meant: spans of a text that cite an injection or a chat format.

Security training, incident reports, detection rules and chat-template
documentation quote the very strings an injection uses ('a classic example is
"Ignore all previous instructions"', 'Llama 3 starts a turn with
<|start_header_id|>user<|end_header_id|>'). The labelling rules count such
text as benign (tests/data/injection/README.md, rule 2), and a scanner that
withholds it blocks a legitimate corpus.

A span is *mentioned* when it is

- quoted (straight or curly double quotes, guillemets, „…“, 「…」, backticks, an
  inline JSON object) and the
  sentence around the quotation, outside it, says that it is being cited: "for
  example", "such as", "phrases like", "payload", "detection rule", "the
  attacker wrote"; or
- a chat-template token (`<|im_start|>`, `[INST]`, `<<SYS>>`, `<|eot_id|>`)
  in a sentence that documents a format: "template", "token", "turn", "role",
  "tokenizer", "stop sequence".

What the sentence says about the span is read outside the span only, so an
instruction cannot declare itself an example from the inside; an attacker
who writes the framing around it gets the discount, which is why a mentioned
match still counts (`MENTION_DISCOUNT` of its weight) and the context fence
remains the second line of defence. A single quote opens a quotation only
where it cannot be an apostrophe (not after a letter) and closes one only
before a non-letter.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass


def _pair(open_: str, close: str) -> str:
    """A quotation between `open_` and `close` on one line: the opening mark after a space,
    bracket or punctuation and before a non-space, non-digit (so not `'90s`, not `5" screen`),
    the closing mark after a non-space and not before a letter or digit (so not `It's`).

    The pattern starts with the opening mark and looks behind it for what precedes it (`.`
    is the mark itself; at the start of the text the lookbehind cannot match, so it passes):
    a pattern that starts with a literal lets `re` skip to the marks, twenty times faster
    than trying a lookbehind at every position."""
    before = r"(?<![^\s(\[{:;,—–/\-\"“'‘«„].)"
    return rf"{open_}{before}(?=[^\s\d{close}])[^{close}\n]{{0,399}}(?<=\S)[{close}](?!\w)"


QUOTES = re.compile(
    "|".join(
        [
            _pair('"', '"'),
            _pair("“", "”"),
            _pair("„", "“”"),
            _pair("«", "»"),
            _pair("'", "'"),
            _pair("‘", "’"),
            r"`[^`\n]{1,400}`",  # a code span
            r"「[^」\n]{1,400}」",  # Japanese and Chinese corner brackets: never apostrophes
            r"『[^』\n]{1,400}』",
        ]
    )
)
_JSON_START = re.compile(r"\{\s*\"")
_JSON_REACH = 400
_CITING = re.compile(
    r"\b(?:e\.g\.|i\.e\.|for (?:example|instance)|such as|examples?|classic|typical(?:ly)?|known as"
    r"|phrases?|strings?|patterns?|payloads?|attacks?|attackers?|attempts?|injections?|injected|jailbreaks?"
    r"|malicious|adversarial|detect(?:s|ed|ion|or)?|flags?|flagged|filters?|blocks?|blocked"
    r"|red[- ]team(?:ers?|ing)?|pentest(?:ers?|ing)?|incidents?|researchers?|quiz|slide|test case"
    r"|owasp|vulnerab\w*|exploit(?:s|ed)?|planted|tricked|manipulat\w*|untrusted|spoof(?:s|ed|ing)?"
    r"|beispiel|zum beispiel|angriff\w*|exemple|par exemple|attaque\w*|ejemplo|por ejemplo|ataque\w*"
    r"|esempio|per esempio|attacco|exemplo|por exemplo|voorbeeld|bijvoorbeeld|till exempel|exempel"
    r"|for eksempel|eksempel|esimerkiksi|esimerkki|de exemplu|exemplu|atak\w*|misalnya|contoh|serangan)\b",
    re.IGNORECASE,
)
# Citing words with letters outside ASCII, looked for only in text that has such letters (each
# alternative costs time at every word of every text).
_CITING_WORLD = re.compile(
    r"\b(?:przykład\w*|na przykład|například|příklad\w*|például|példa\w*|örneğin|örnek|saldırı\w*"
    r"|например|пример\w*|атак\w*|инъекци\w*|наприклад|приклад\w*|παράδειγμα|επίθεσ\w*"
    r"|למשל|דוגמ\w*|مثلا|مثلاً|مثال|هجوم|حمله|उदाहरण|हमल\w*|ví dụ|tấn công|예를 들어|예시|공격|인젝션)\b"
    # Scripts without spaces between words have no word boundaries to anchor on.
    r"|例えば|たとえば|例として|といった|攻撃|インジェクション|例如|比如|举例|示例|攻击|注入|ตัวอย่าง|โจมตี",
    re.IGNORECASE,
)


def _citing(text: str) -> bool:
    """Whether `text` has a word that presents a quotation as cited."""
    if _CITING.search(text) is not None:
        return True
    return not text.isascii() and _CITING_WORLD.search(text) is not None


TEMPLATE_TOKENS = re.compile(
    r"<\|[a-z_]{2,20}\|>|\[/?INST\]|<</?SYS>>|<\|?/?(?:start_of_turn|end_of_turn)\|?>"
    r"|</?(?:system|instructions?|system_prompt|sys|admin|developer_message|s)>"
    r"|<(?:tool_call|function_call|function_calls|invoke)(?:\s+[\w-]+=(?:\"[^\"\n]{0,60}\"|'[^'\n]{0,60}'))*\s*/?>",
    re.IGNORECASE,
)
# Words that documentation of a chat format uses and an injection has little reason to
# (not "role", "turn" or "format", which injections use too).
_DOCUMENTING = re.compile(
    r"\b(?:templates?|tokens?|tokeni[sz]er|stop (?:token|sequence)s?|special tokens?|chat ?ml|llama|mistral"
    r"|gemma|apply_chat_template|prompt format)\b",
    re.IGNORECASE,
)
_MAY_QUOTE = re.compile(r"[\"“„«`'‘{<\[「『]")  # every quotation and template token starts with one
_BREAK = re.compile(r"[.!?](?=[\s\"“”'‘’«»]|$)|[。！？]|\n")  # a sentence ends
Spans = tuple[tuple[int, int], ...]
_REACH = 200  # characters of context on each side that a sentence may span


@dataclass(frozen=True, slots=True)
class Cited:
    """What `cite` found in a text: every quotation (`quoted`), and the quotations and
    template tokens that are mentioned rather than meant (`mentioned`); spans in order."""

    quoted: Spans
    mentioned: Spans


NOTHING = Cited((), ())


def _quotations(text: str) -> list[tuple[int, int]]:
    """Quotations, code spans and inline JSON objects, in order, not overlapping."""
    spans = [m.span() for m in QUOTES.finditer(text)]
    decoder = json.JSONDecoder()
    at = 0
    for m in _JSON_START.finditer(text):
        if m.start() < at:
            continue
        try:
            value, length = decoder.raw_decode(text[m.start() : m.start() + _JSON_REACH])
        except ValueError:
            continue
        if isinstance(value, dict):
            spans.append((m.start(), m.start() + length))
            at = m.start() + length
    spans.sort()
    kept: list[tuple[int, int]] = []
    for span in spans:  # a JSON object and the quotations inside it: keep the outermost
        if kept and span[0] < kept[-1][1]:
            if span[1] > kept[-1][1] and span[0] == kept[-1][0]:
                kept[-1] = span
            continue
        kept.append(span)
    return kept


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    """Bounds of the sentence holding `text[start:end]`, at most `_REACH` either side."""
    lo, hi = max(0, start - _REACH), min(len(text), end + _REACH)
    left = lo
    for m in _BREAK.finditer(text, lo, start):
        left = m.end()
    after = _BREAK.search(text, end, hi)
    return left, (after.end() if after else hi)


def _within_one_sentence(text: str, start: int, end: int) -> bool:
    """Whether a quotation holds no sentence break followed by more text."""
    inner = _BREAK.search(text, start + 1, end - 1)
    return inner is None or not text[inner.end() : end - 1].strip()


class _Index:
    """Sorted, non-overlapping spans, and those that overlap a range (by bisection, so a
    text of many quotations costs n log n, not n squared)."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.spans = spans
        self.starts = [s for s, _ in spans]
        self.ends = [e for _, e in spans]

    def overlapping(self, left: int, right: int) -> list[tuple[int, int]]:
        return self.spans[bisect_right(self.ends, left) : bisect_left(self.starts, right)]


def _outside(text: str, left: int, right: int, spans: list[tuple[int, int]]) -> str:
    """`text[left:right]` with every span in `spans` (in order) blanked."""
    out, at = [], left
    for s, e in spans:
        s, e = max(s, at), min(e, right)
        if s < e:
            out += [text[at:s], " " * (e - s)]
            at = e
    out.append(text[at:right])
    return "".join(out)


def cite(text: str, memo: dict[str, Cited] | None = None) -> Cited:
    """The quotations of `text` and what it mentions rather than means (see the module
    docstring). `memo`, if given, remembers the answer by text for one scan (the rules and the
    learned layer ask about the same readings); nothing is kept beyond it, so no chunk's
    plaintext outlives its scan in a cache."""
    if memo is not None:
        if text not in memo:
            memo[text] = cite(text)
        return memo[text]
    if not _MAY_QUOTE.search(text):
        return NOTHING
    quotes = _Index(_quotations(text))
    tokens = _Index([m.span() for m in TEMPLATE_TOKENS.finditer(text)])
    mentioned: list[tuple[int, int]] = []
    # Each cue is looked for in the whole text only when there is something it could cite.
    citing = bool(quotes.spans) and _citing(text)
    documenting = bool(tokens.spans) and _DOCUMENTING.search(text) is not None
    for start, end in quotes.spans if citing else ():
        if not _within_one_sentence(text, start, end):
            continue
        left, right = _sentence(text, start, end)
        if _citing(_outside(text, left, right, quotes.overlapping(left, right))):
            mentioned.append((start, end))
    for start, end in tokens.spans if documenting else ():
        if any(s <= start and end <= e for s, e in quotes.overlapping(start, end)):
            continue  # inside a quotation: cited or not with it
        left, right = _sentence(text, start, end)
        hidden = sorted(quotes.overlapping(left, right) + tokens.overlapping(left, right))
        if _DOCUMENTING.search(_outside(text, left, right, hidden)):
            mentioned.append((start, end))
    return Cited(tuple(quotes.spans), tuple(sorted(mentioned)))


def mentioned_spans(text: str) -> Spans:
    """The spans of `text` that are cited rather than addressed to the reader."""
    return cite(text).mentioned


def within(spans: Spans, start: int, end: int) -> bool:
    """Whether `start:end` lies inside one of `spans`."""
    return any(s <= start and end <= e for s, e in spans)


def strictly_within(spans: Spans, start: int, end: int) -> bool:
    """Whether `start:end` lies inside one of `spans` without touching its ends (inside the
    quotation marks, not on them)."""
    return any(s < start and end < e for s, e in spans)


def masked(text: str, spans: Spans) -> str:
    """`text` with each span replaced by an empty quotation (what the learned layer reads)."""
    if not spans:
        return text
    out, last = [], 0
    for start, end in spans:
        if start < last:
            continue
        out += [text[last:start], '"…"']
        last = end
    out.append(text[last:])
    return "".join(out)
