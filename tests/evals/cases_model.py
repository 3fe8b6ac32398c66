"""An evaluation case as written in tests/evals/cases/*.yml, and what it expects."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.lib.planning.models import PlannedOperation, RunCondition
from shared.lib.risk.models import RiskTier

CASES_DIR = Path(__file__).parent / "cases"


class Case(BaseModel):
    """One request (text) or alert, and exactly one expectation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str = ""
    text: str | None = None
    alert: dict[str, Any] | None = None
    plan: list[str] | None = None
    clarify: bool = False
    refuse: str | None = None
    escalate: bool = False
    no_mutation: bool = False
    min_tier: RiskTier | None = None
    flag: str | None = None
    candidates: list[str] = Field(default_factory=list)
    model: list[dict[str, Any]] | None = None
    skip: bool = False

    @property
    def label(self) -> str:
        return self.text or f"alert {self.alert}"

    def expected_steps(self) -> list[PlannedOperation]:
        return [parse_step(step) for step in self.plan or []]


def parse_step(text: str) -> PlannedOperation:
    """ "restart api@prod", "logs payments@prod tail=50", "run_command lb1@prod argv=df -h",
    "restart api@prod if step 1 failed"."""
    text, _, condition = text.partition(" if step ")
    when = None
    if condition:
        index, status = condition.split()
        when = RunCondition(step=int(index), status="ok" if status == "succeeded" else "failed")
    head, _, rest = text.partition(" argv=")
    words = head.split()
    operation, where = words[0], words[1]
    target, _, environment = where.partition("@")
    params: dict[str, Any] = {}
    for pair in words[2:]:
        key, _, value = pair.partition("=")
        params[key] = int(value) if value.isdigit() else value
    if rest:
        params["argv"] = shlex.split(rest)
    return PlannedOperation(
        operation=operation,
        target=target,
        environment=environment or None,
        params=params,
        when=when,
    )


def load_cases(directory: Path = CASES_DIR) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        category = document["category"]
        for raw in document["cases"]:
            case = Case.model_validate({"category": category, **raw})
            if not case.skip:
                cases.append(case)
    return cases
