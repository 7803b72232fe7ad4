"""The injection scanner: normalisation, then rules, learned classifier and
obfuscation signals, folded into one score in [0, 1].

    score = 1 - (1 - rules) * (1 - classifier) * (1 - obfuscation)

`rules` is the rule layer's own noisy-or (`securerag.scanning.rules`),
`classifier` the most suspicious sentence window's probability
(`securerag.scanning.classifier`) times `CLASSIFIER_WEIGHT`, which is below
the default withhold threshold, so that it can flag on its own but withholds
only with a rule or signal in agreement (a scale rather than a cap, so that
scores keep the classifier's order and a threshold can be chosen anywhere),
`obfuscation` a small weight for text a reader cannot see (Unicode tag
characters, zero-width characters inside words). Every layer reads every
view `normalise` produced, so an instruction hidden in base64 or an HTML
comment is judged like one in plain sight, and the reasons say where it was
found (`override`, `hidden:base64`).

Actions follow thresholds (`ScanThresholds`), which may differ per tenant and
per classification: `flag` (returned, fenced and marked), `withhold` (not
returned, counted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from securerag.models import Action, ScanResult
from securerag.scanning import classifier as _classifier
from securerag.scanning import mentions
from securerag.scanning.normalise import Normalised, normalise
from securerag.scanning.rules import match_rules

RULES_VERSION = 10
CLASSIFIER_REASON = "classifier"
CLASSIFIER_WEIGHT = 0.79
_HIDDEN_ORIGINS = {"base64", "hex", "url-encoded", "unicode-tags", "html-hidden", "markdown-comment", "rot13"}
_OBFUSCATION_WEIGHTS = {"tag_characters": 0.5, "zero_width": 0.15}
# Chosen out of fold with the bundled model (scripts/train_scanner.py): the threshold with the most
# dataset attacks caught while both pools of benign text stay within their false-positive budgets.
DEFAULT_FLAG = 0.69
DEFAULT_WITHHOLD = 0.8


def is_stale(sealed: Mapping[str, object] | None, version: int) -> bool:
    """Whether a sealed verdict is missing or older than scanner `version`."""
    return not sealed or int(str(sealed["version"])) < version


def hidden_floor(sealed: Mapping[str, object] | None) -> dict[str, object] | None:
    """The part of a sealed verdict that the document's hidden text raised, if any:
    `{"score", "reasons"}`.

    Hidden HTML is scanned at ingestion and never stored, so no rescan can read it again.
    A verdict re-sealed by `securerag rescan` carries this floor explicitly (`hidden`);
    one sealed at ingestion has it as its `hidden:*` reasons and its score.
    """
    if not sealed:
        return None
    floor = sealed.get("hidden")
    if isinstance(floor, Mapping):
        return {
            "score": float(str(floor["score"])),
            "reasons": list(cast(Sequence[object], floor["reasons"])),
        }
    reasons = [
        str(r) for r in cast(Sequence[object], sealed.get("reasons", ())) if str(r).startswith("hidden:")
    ]
    if not reasons:
        return None
    return {"score": float(str(sealed["score"])), "reasons": reasons}


def refreshed(sealed: Mapping[str, object] | None, fresh: ScanResult) -> tuple[float, tuple[str, ...]]:
    """The score and reasons that replace a stale sealed verdict after a rescan of the
    chunk's text: the fresh ones, never below what the document's hidden text raised
    (`hidden_floor`), whose reasons are kept whatever the scores."""
    floor = hidden_floor(sealed)
    if floor is None:
        return fresh.score, fresh.reasons
    hidden = tuple(str(r) for r in cast(Sequence[object], floor["reasons"]))
    return max(fresh.score, float(str(floor["score"]))), tuple(dict.fromkeys((*fresh.reasons, *hidden)))


def classifier_readings(norm: Normalised, memo: dict[str, mentions.Cited] | None = None) -> list[str]:
    """What the learned layer reads of a text: every view but rot13 (the rules read that),
    with what each cites as an example or a format elided (`mentions`; `memo` as there)."""
    texts = [norm.text, *(v.text for v in norm.views if v.origin != "rot13")]
    return [mentions.masked(t, mentions.cite(t, memo).mentioned) for t in texts]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Scores at or above `flag` are flagged, at or above `withhold` withheld."""

    flag: float = DEFAULT_FLAG
    withhold: float = DEFAULT_WITHHOLD

    def __post_init__(self) -> None:
        if not 0 <= self.flag <= self.withhold <= 1:
            raise ValueError("need 0 <= flag <= withhold <= 1")

    def action_for(self, score: float) -> Action:
        if score >= self.withhold:
            return Action.WITHHOLD
        if score >= self.flag:
            return Action.FLAG
        return Action.ALLOW


@dataclass(frozen=True, slots=True)
class ScanThresholds:
    """Thresholds by tenant and classification, most specific first.

    `overrides` maps a tenant name (or `*`) to a map from classification (or
    `*`) to thresholds: `{"acme": {"restricted": Thresholds(0.3, 0.6)}}`.
    """

    default: Thresholds = field(default_factory=Thresholds)
    overrides: Mapping[str, Mapping[str, Thresholds]] = field(default_factory=dict)

    def for_(self, tenant: str | None = None, classification: str | None = None) -> Thresholds:
        for t in (tenant, "*"):
            by_class = self.overrides.get(t) if t is not None else None
            if by_class is None:
                continue
            for c in (classification, "*"):
                if c is not None and c in by_class:
                    return by_class[c]
        return self.default


class InjectionScanner:
    """Scores text for prompt injection (see the module docstring)."""

    def __init__(
        self,
        thresholds: ScanThresholds | None = None,
        *,
        model: _classifier.WindowClassifier | None = None,
        use_classifier: bool = True,
    ) -> None:
        self._thresholds = thresholds or ScanThresholds()
        self._model = (model or _classifier.bundled()) if use_classifier else None
        model_version = self._model.version if self._model is not None else 0
        self._version = RULES_VERSION * 1000 + model_version

    @property
    def version(self) -> int:
        """Changes whenever verdicts may change; stored with each verdict."""
        return self._version

    @property
    def thresholds(self) -> ScanThresholds:
        return self._thresholds

    def scan(self, text: str, *, tenant: str | None = None, classification: str | None = None) -> ScanResult:
        """Score `text` and decide what to do with it under the thresholds that apply."""
        return self.scan_many([text], tenant=tenant, classification=classification)[0]

    def scan_many(
        self, texts: Sequence[str], *, tenant: str | None = None, classification: str | None = None
    ) -> list[ScanResult]:
        """`scan` for each of `texts`, with one pass of the learned layer over all their windows."""
        if not texts:  # a retrieval whose sealed verdicts are all current
            return []
        norms = [normalise(text) for text in texts]
        memos: list[dict[str, mentions.Cited]] = [{} for _ in norms]  # for this call only
        probabilities: list[float] = [0.0] * len(norms)
        if self._model is not None:
            probabilities = self._model.score_many(
                [classifier_readings(n, memo) for n, memo in zip(norms, memos, strict=True)]
            )
        return [
            self._verdict(norm, probability, memo, tenant, classification)
            for norm, probability, memo in zip(norms, probabilities, memos, strict=True)
        ]

    def _verdict(
        self,
        norm: Normalised,
        probability: float,
        memo: dict[str, mentions.Cited],
        tenant: str | None,
        classification: str | None,
    ) -> ScanResult:
        reasons: list[str] = []
        remaining = 1.0
        hidden: set[str] = set()
        for name, (weight, origin) in match_rules(norm, memo).items():
            remaining *= 1.0 - weight
            reasons.append(name)
            if origin in _HIDDEN_ORIGINS:
                hidden.add(origin)
        if self._model is not None:
            # The learned layer alone may flag (the chunk is still returned, fenced and
            # marked) but not withhold: on held-out data it is noisier than the rules.
            remaining *= 1.0 - CLASSIFIER_WEIGHT * probability
            if probability >= 0.5:
                reasons.append(CLASSIFIER_REASON)
        for signal, weight in _OBFUSCATION_WEIGHTS.items():
            if norm.signals.get(signal):
                remaining *= 1.0 - weight
                reasons.append(f"obfuscation:{signal}")
        reasons += [f"hidden:{origin}" for origin in sorted(hidden)]
        score = round(1.0 - remaining, 4)
        return ScanResult(
            score=score, action=self.action_for(score, tenant, classification), reasons=tuple(reasons)
        )

    def action_for(
        self, score: float, tenant: str | None = None, classification: str | None = None
    ) -> Action:
        """The action a (stored) score leads to under the thresholds that apply."""
        return self._thresholds.for_(tenant, classification).action_for(score)


class RuleScanner(InjectionScanner):
    """The scanner without its learned layer (rules and obfuscation signals only)."""

    def __init__(
        self, *, flag_threshold: float = DEFAULT_FLAG, withhold_threshold: float = DEFAULT_WITHHOLD
    ) -> None:
        super().__init__(ScanThresholds(Thresholds(flag_threshold, withhold_threshold)), use_classifier=False)
