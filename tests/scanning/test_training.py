"""The flag threshold `scripts/train_scanner.py` chooses respects both false-positive budgets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_scanner.py"


def _train_scanner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_scanner", _SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("train_scanner", module)
    spec.loader.exec_module(module)
    return module


TRAIN = _train_scanner()


def test_hard_negatives_raise_the_threshold_to_their_budget() -> None:
    attacks = np.linspace(0.45, 0.95, 100)
    benign = np.full(100, 0.1)
    scores, labels = np.concatenate([attacks, benign]), np.array([1] * 100 + [0] * 100)
    hard = np.concatenate([np.full(90, 0.2), np.linspace(0.5, 0.8, 10)])  # 10% score 0.5-0.8
    alone, caught, _ = TRAIN.best_threshold(scores, labels)
    both, tpr, _ = TRAIN.best_threshold(scores, labels, hard)
    assert alone <= 0.45
    assert caught == 1.0
    assert (hard >= both).mean() <= TRAIN.HANDWRITTEN_FPR_BUDGET < (hard >= both - 0.01).mean()
    assert tpr == (attacks >= both).mean()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=60),
    st.lists(st.floats(0, 1), min_size=1, max_size=60),
    st.lists(st.floats(0, 1), min_size=1, max_size=60),
)
def test_the_chosen_threshold_keeps_both_budgets(
    attacks: list[float], benign: list[float], hard: list[float]
) -> None:
    scores = np.asarray(attacks + benign)
    labels = np.asarray([1] * len(attacks) + [0] * len(benign))
    flag, tpr, fpr = TRAIN.best_threshold(scores, labels, np.asarray(hard))
    if tpr == 0:
        return  # nothing caught within budget: no threshold chosen
    assert fpr == (np.asarray(benign) >= flag).mean() <= TRAIN.FPR_BUDGET
    assert (np.asarray(hard) >= flag).mean() <= TRAIN.HANDWRITTEN_FPR_BUDGET
