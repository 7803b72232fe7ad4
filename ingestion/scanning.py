"""Prompt-injection scanning by rules: instruction overrides, chat-template and
role spoofing, exfiltration, secrecy demands and tool hijacking, in several
languages.

Each matching rule contributes its weight; the score is 1 - Π(1 - w) over the
distinct rules that match, so independent signals add up and no single weak
one decides. Actions follow thresholds: `flag` (returned, fenced and marked)
and `withhold` (not returned, counted).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from securerag.models import Action, ScanResult


@dataclass(frozen=True, slots=True)
class Rule:
    """One detection rule: a name (the reason reported), a weight, a pattern."""

    name: str
    weight: float
    pattern: re.Pattern[str]


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.MULTILINE)


_TARGET = r"(?:instructions?|prompts?|rules|directions|guidelines|directives|context|guardrails)"
_BEFORE = (
    r"(?:all |any |the |your |my |these |those |of |previous |prior |above |earlier |preceding "
    r"|former |initial |original |system )*"
)

RULES: tuple[Rule, ...] = (
    Rule(
        "override",
        0.7,
        _rx(rf"\b(?:ignore|disregard|forget|override|bypass|skip|drop)\b[\s,]+{_BEFORE}{_TARGET}\b"),
    ),
    Rule(
        "override",
        0.7,
        _rx(
            r"\b(?:ignoriere|vergiss)\b.{0,30}\b(?:anweisungen|instruktionen|regeln)\b"
            r"|\bignor(?:e|ez|er)\b.{0,30}\b(?:instructions|consignes|règles)\b"
            r"|\b(?:ignora|olvida)\b.{0,30}\b(?:instrucciones|reglas)\b"
            r"|\b(?:ignora|dimentica)\b.{0,30}\b(?:istruzioni|regole)\b"
            r"|\b(?:negeer|vergeet)\b.{0,30}\b(?:instructies|regels)\b"
        ),
    ),
    Rule(
        "new_instructions",
        0.5,
        _rx(
            r"\b(?:new|updated|real|actual|revised|true)\s+(?:system\s+)?(?:instructions?|prompt|task|orders)\s*[:\-]"
            r"|\bfrom now on\b.{0,40}\b(?:you|respond|answer|reply)\b"
        ),
    ),
    Rule(
        "role_play",
        0.5,
        _rx(
            r"\byou are now\b|\bpretend (?:to be|you are)\b"
            r"|\bact as (?:an? )?(?:unrestricted|unfiltered|jailbroken)"
            r"|\b(?:developer|god|dan|jailbreak) mode\b"
        ),
    ),
    Rule(
        "template_spoof",
        0.7,
        _rx(
            r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>"
            r"|\[/?INST\]|<</?SYS>>|^\s*#{0,3}\s*(?:system|assistant)\s*(?:message|prompt)?\s*:"
            r"|</?(?:system|instructions?)>"
        ),
    ),
    Rule(
        "prompt_leak",
        0.6,
        _rx(
            r"\b(?:reveal|print|show|repeat|output|display|leak|dump)\b.{0,30}"
            r"\b(?:system prompt|initial prompt|hidden (?:prompt|instructions)|your instructions)\b"
        ),
    ),
    Rule(
        "exfiltration",
        0.6,
        _rx(
            r"!\[[^\]]*\]\(\s*https?://[^)\s]*[?&][^)\s]*=[^)\s]*\)"
            r"|\b(?:send|post|forward|upload|email|exfiltrate|transmit|leak)\b.{0,60}"
            r"\b(?:to|at|into)\b\s*(?:https?://|[\w.+-]+@[\w-]+\.)"
        ),
    ),
    Rule(
        "secrecy",
        0.5,
        _rx(
            r"\b(?:do not|don't|never|without)\b.{0,25}\b(?:tell|telling|inform|informing|mention|mentioning"
            r"|reveal|revealing|disclose|alert|alerting|notify|notifying)\b.{0,20}\b(?:the )?user\b"
        ),
    ),
    Rule(
        "tool_hijack",
        0.4,
        _rx(
            r"\b(?:call|invoke|use|run|execute|trigger)\b.{0,20}\b(?:the )?(?:tool|function|plugin|api)\b"
            r".{0,40}\b(?:with|using|to)\b"
        ),
    ),
    Rule(
        "fake_boundary",
        0.3,
        _rx(
            r"\b(?:end of (?:document|context|text|data|input)|begin(?:ning)? of (?:new )?instructions)\b"
            r"|^\s*-{3,}\s*(?:end|system|admin)\b"
        ),
    ),
)

_INVISIBLE = {"Cf", "Cc"}


def _normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in folded if ch in "\n\t" or unicodedata.category(ch) not in _INVISIBLE)


class RuleScanner:
    """Scores text with `RULES`; thresholds decide the action."""

    version = 1

    def __init__(self, *, flag_threshold: float = 0.5, withhold_threshold: float = 0.8) -> None:
        if not 0 <= flag_threshold <= withhold_threshold <= 1:
            raise ValueError("need 0 <= flag_threshold <= withhold_threshold <= 1")
        self._flag = flag_threshold
        self._withhold = withhold_threshold

    def scan(self, text: str) -> ScanResult:
        """Score `text` and decide what to do with it."""
        normalised = _normalise(text)
        weights: dict[str, float] = {}
        for rule in RULES:
            if rule.name not in weights and rule.pattern.search(normalised):
                weights[rule.name] = rule.weight
        remaining = 1.0
        for weight in weights.values():
            remaining *= 1.0 - weight
        score = round(1.0 - remaining, 4)
        return ScanResult(score=score, action=self.action_for(score), reasons=tuple(weights))

    def action_for(self, score: float) -> Action:
        """The action a score leads to under this scanner's thresholds."""
        if score >= self._withhold:
            return Action.WITHHOLD
        if score >= self._flag:
            return Action.FLAG
        return Action.ALLOW
