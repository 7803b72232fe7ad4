"""Mentioned, not meant: spans of a text that cite an injection or a chat format.

Security training, incident reports, detection rules and chat-template
documentation quote the very strings an injection uses ('a classic example is
"Ignore all previous instructions"', 'Llama 3 starts a turn with
<|start_header_id|>user<|end_header_id|>'). The labelling rules count such
text as benign (tests/data/injection/README.md, rule 2), and a scanner that
withholds it blocks a legitimate corpus.

A span is *mentioned* when it is

- quoted (straight or curly double quotes, guillemets, „…“, backticks, an inline
  JSON object) and the
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

import re

QUOTES = re.compile(
    r"\"[^\"\n]{1,400}\"|“[^”\n]{1,400}”|„[^“”\n]{1,400}[“”]|«[^»\n]{1,400}»|`[^`\n]{1,400}`"
    r"|(?<![\w'])'[^'\n]{1,400}'(?![\w'])|‘[^’\n]{1,400}’"  # single quotes, not apostrophes
    r"|\{\s*\"[^\n]{1,400}\}"  # an inline JSON object (a tool call shown in documentation)
)
_CITING = re.compile(
    r"\b(?:e\.g\.|i\.e\.|for (?:example|instance)|such as|examples?|classic|typical(?:ly)?|known as"
    r"|phrases?|strings?|patterns?|payloads?|attacks?|attackers?|attempts?|injections?|injected|jailbreaks?"
    r"|malicious|adversarial|detect(?:s|ed|ion|or)?|flags?|flagged|filters?|blocks?|blocked"
    r"|red[- ]team(?:ers?|ing)?|pentest(?:ers?|ing)?|incidents?|researchers?|quiz|slide|test case"
    r"|owasp|vulnerab\w*|exploit(?:s|ed)?|planted|tricked|manipulat\w*|untrusted|spoof(?:s|ed|ing)?"
    r"|beispiel|zum beispiel|angriff\w*|exemple|par exemple|attaque\w*|ejemplo|por ejemplo|ataque\w*"
    r"|esempio|per esempio|attacco|exemplo|por exemplo|voorbeeld|bijvoorbeeld)\b",
    re.IGNORECASE,
)
TEMPLATE_TOKENS = re.compile(
    r"<\|[a-z_]{2,20}\|>|\[/?INST\]|<</?SYS>>|<\|?/?(?:start_of_turn|end_of_turn)\|?>"
    r"|</?(?:system|instructions?|system_prompt|sys|admin|developer_message|s)>"
    r"|<(?:tool_call|function_call|function_calls|invoke)\b[^>\n]{0,80}>",
    re.IGNORECASE,
)
_DOCUMENTING = re.compile(
    r"\b(?:templates?|tokens?|tokenizer|turns?|roles?|format(?:s|ted)?|syntax|stop (?:token|sequence)s?"
    r"|special tokens?|header|markers?|delimit\w*|wraps?|encloses?|chat ?ml|llama|mistral|apply_chat_template"
    r"|prompt format)\b",
    re.IGNORECASE,
)
_MAY_QUOTE = re.compile(r"[\"“„«`'‘{<\[]")  # every quotation and template token starts with one
Spans = tuple[tuple[int, int], ...]
_REACH = 200  # characters of context on each side that a sentence may span


def _sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """Bounds of the sentence(s) holding `text[start:end]`, at most `_REACH` either side."""
    lo = max(0, start - _REACH)
    cut = max(text.rfind("\n", lo, start), *(text.rfind(p, lo, start) for p in (". ", "! ", "? ")))
    left = cut + 1 if cut >= 0 else lo
    hi = min(len(text), end + _REACH)
    ends = [
        i for i in (text.find("\n", end, hi), *(text.find(p, end, hi) for p in (". ", "! ", "? "))) if i >= 0
    ]
    return left, (min(ends) + 1 if ends else hi)


def _outside(text: str, left: int, right: int, spans: list[tuple[int, int]]) -> str:
    """`text[left:right]` with every span in `spans` (in order, not overlapping) blanked."""
    out, at = [], left
    for s, e in spans:
        s, e = max(s, at), min(e, right)
        if s < e:
            out += [text[at:s], " " * (e - s)]
            at = e
    out.append(text[at:right])
    return "".join(out)


def mentioned_spans(text: str, memo: dict[str, Spans] | None = None) -> Spans:
    """The spans of `text` that are cited rather than addressed to the reader (see the
    module docstring), in order. `memo`, if given, remembers them by text for one scan (the
    rules and the learned layer ask about the same readings); nothing is kept beyond it, so
    no chunk's plaintext outlives its scan in a cache."""
    if memo is not None:
        if text not in memo:
            memo[text] = mentioned_spans(text)
        return memo[text]
    if not _MAY_QUOTE.search(text):
        return ()
    quotes = [m.span() for m in QUOTES.finditer(text)]
    spans: list[tuple[int, int]] = []
    for start, end in quotes:
        left, right = _sentence_around(text, start, end)
        if _CITING.search(_outside(text, left, right, quotes)):
            spans.append((start, end))
    for m in TEMPLATE_TOKENS.finditer(text):
        start, end = m.span()
        if any(s <= start and end <= e for s, e in spans):
            continue
        left, right = _sentence_around(text, start, end)
        tokens = [t.span() for t in TEMPLATE_TOKENS.finditer(text, left, right)]
        if _DOCUMENTING.search(_outside(text, left, right, sorted(tokens + quotes))):
            spans.append((start, end))
    return tuple(sorted(spans))


def within(spans: Spans, start: int, end: int) -> bool:
    """Whether `start:end` lies inside one of `spans`."""
    return any(s <= start and end <= e for s, e in spans)


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
