"""Figures tests gather and the run prints at its end (see conftest's terminal summary)."""

from __future__ import annotations

from collections import Counter

SCHEMATHESIS_CASES: Counter[str] = Counter()
