"""FAQ rules (data in faq.json) and the pure matching of a question against them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

RULES_PATH = Path(__file__).with_name("faq.json")
_HUMAN = re.compile(r"\b(human|admin|administrator|operator|agent|real person|someone real|support person)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Rule:
    id: str
    patterns: tuple[re.Pattern[str], ...]
    answer: str


@lru_cache(maxsize=1)
def rules() -> tuple[Rule, ...]:
    data = json.loads(RULES_PATH.read_text(encoding="utf-8"))
    return tuple(
        Rule(r["id"], tuple(re.compile(p, re.IGNORECASE) for p in r["patterns"]), r["answer"])
        for r in data["rules"]
    )


def match(text: str, catalogue: tuple[Rule, ...] | None = None) -> Rule | None:
    """The first rule (in file order) one of whose patterns occurs in the question."""
    question = " ".join(text.split())
    for rule in catalogue if catalogue is not None else rules():
        if any(p.search(question) for p in rule.patterns):
            return rule
    return None


def asks_for_human(text: str) -> bool:
    """Whether the question asks for a person (escalation words)."""
    return bool(_HUMAN.search(text))
