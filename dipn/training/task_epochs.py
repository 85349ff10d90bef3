"""Each task keeps its best val epoch within the one model the phone runs (issue 25, item 3).

The two tasks share a trunk (embeddings, recurrences, attention) and end in their own branch
(``TaskHeads``). They rarely peak at the same epoch: on real logs the 24 h task overfits first,
while the 1 h task keeps improving. Choosing one epoch by the mean of both AUCs gives up some of
both. Here, once a task has gone ``patience`` epochs without a better val AUC:

  * the model goes back to ``best.pt`` (the epoch of best mean val AUC) and its trunk freezes;
  * a task whose best epoch that is retires there: its branch freezes too, so its scores are
    exactly those of its best epoch, in this model, for good;
  * the branches of the other tasks train on (their loss only) on the frozen trunk, each from its
    weights of that epoch; a branch that goes ``patience`` epochs without a better val AUC gets
    the weights of its best epoch back and retires; the run stops when every task has retired.

Every epoch's model is one consistent network (one trunk, one branch per task), so ``best.pt``
(chosen as before by the mean val AUC, where a retired task counts its best AUC, exactly what its
frozen branch scores) is a single artifact, and never scores worse on val than the choice by mean
AUC alone. Models whose heads are not one branch per task (HEROES' entire-space heads) and
single-task models keep the plain choice by mean AUC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from dipn.models.base import TaskHeads


def task_branches(model: nn.Module, tasks: Sequence[str]) -> dict[str, nn.Module] | None:
    """The branch of each task, or None when tasks cannot retire one by one (one task, or heads
    that are not one branch per task)."""
    heads = getattr(model, "heads", None)
    if len(tasks) < 2 or not isinstance(heads, TaskHeads):
        return None
    return {task: heads.branches[task] for task in tasks}


@dataclass
class TaskEpochs:
    """Per task: best val AUC, its epoch, epochs since; and the tasks retired (plain data: it is
    saved with the train state and read back on resume)."""

    best: dict[str, float] = field(default_factory=dict)
    best_epoch: dict[str, int] = field(default_factory=dict)
    bad: dict[str, int] = field(default_factory=dict)
    retired: list[str] = field(default_factory=list)
    trunk_epoch: int | None = None  # the epoch the trunk froze at; None while it trains

    def to_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad": self.bad, "retired": self.retired,
                "trunk_epoch": self.trunk_epoch}  # fmt: skip

    def active(self, tasks: Sequence[str]) -> tuple[str, ...]:
        return tuple(t for t in tasks if t not in self.retired)

    def record(self, epoch: int, aucs: dict[str, float], tasks: Sequence[str]) -> list[str]:
        """One epoch's val AUCs (1-based ``epoch``) -> the active tasks that improved."""
        improved = []
        for task in self.active(tasks):
            auc = aucs[task]
            if not math.isnan(auc) and auc > self.best.get(task, -math.inf):
                self.best[task], self.best_epoch[task], self.bad[task] = auc, epoch, 0
                improved.append(task)
            else:
                self.bad[task] = self.bad.get(task, 0) + 1
        return improved

    def due(self, tasks: Sequence[str], patience: int) -> list[str]:
        """Active tasks that have gone ``patience`` epochs without improving."""
        return [t for t in self.active(tasks) if self.bad.get(t, 0) >= patience]

    def freeze_trunk(self, history: Sequence[dict[str, Any]], epoch: int, tasks: Sequence[str],
                     at_best: Sequence[str]) -> None:  # fmt: skip
        """The model went back to ``epoch`` and its trunk froze: ``at_best`` retire there, the other
        tasks' records restart from what they scored then (later epochs' trunk is gone)."""
        then = next(h for h in history if h["epoch"] == epoch)
        self.trunk_epoch = epoch
        self.retired.extend(t for t in at_best if t not in self.retired)
        for task in self.active(tasks):
            self.best[task], self.best_epoch[task], self.bad[task] = then[task]["auc"], epoch, 0

    def score(self, aucs: dict[str, float], tasks: Sequence[str]) -> float:
        """The model's val score: mean AUC, a retired task at its best (what its frozen branch scores)."""
        values = [self.best[t] if t in self.retired else aucs[t] for t in tasks]
        values = [v for v in values if not math.isnan(v)]
        return sum(values) / len(values) if values else math.nan


def freeze_all_but(model: nn.Module, branches: dict[str, nn.Module], active: Sequence[str]) -> None:
    """Only the active tasks' branches keep training; the trunk and retired branches are frozen."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for task in active:
        for parameter in branches[task].parameters():
            parameter.requires_grad_(True)
