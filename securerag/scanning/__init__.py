"""Prompt-injection scanning: normalisation, rules, a learned classifier, one score."""

from securerag.scanning.normalise import Normalised, View, normalise
from securerag.scanning.scanner import (
    InjectionScanner,
    RuleScanner,
    ScanThresholds,
    Thresholds,
)

__all__ = [
    "InjectionScanner",
    "Normalised",
    "RuleScanner",
    "ScanThresholds",
    "Thresholds",
    "View",
    "normalise",
]
