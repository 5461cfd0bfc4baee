"""Early stopping on validation patience, as Zhao et al. 2017's CVAE code trains (`train.early_stopping`).

Reference code, details and deviations: docs/methods.md, "Early stopping on validation patience
(harness/train/early_stopping.py)"; the lines of the original: docs/dialogue_recipes.md, CVAE.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from harness.core.config import EarlyStoppingConfig


@dataclass(frozen=True)
class Decision:
    """What the rule says after one validation."""

    validation: int  # k: the validations counted so far, this one included (from 1)
    patience: float  # the deadline after this validation: training stops once patience <= k
    improved: bool  # a new best: strictly below every earlier validation's loss
    significant: bool  # a new best also <= improvement_threshold x the reference: the deadline may have moved
    stop: str | None = None  # why training ends after this validation, or None

    def record(self) -> dict[str, Any]:
        """For the history entry of the validated epoch (train_log.json)."""
        return {"validation": self.validation, "patience": self.patience, "improved": self.improved,
                "significant": self.significant, "stop": self.stop}


class EarlyStopping:
    def __init__(self, config: EarlyStoppingConfig):
        self.config = config
        self.validations = 0  # k: validations counted so far
        self.patience = float(config.patience)  # the deadline, in validations (Zhao et al.'s `patience`)
        self.best = math.inf  # the lowest loss so far (`best_dev_loss`)
        self.best_epoch: int | None = None
        self.reference = math.inf  # the loss of the last significant improvement (`dev_loss_threshold`)
        self.reference_validation: int | None = None
        self.reference_epoch: int | None = None
        self.stopped: dict | None = None  # the record of the stop (train_log.json's `stopped_early`) once it happened

    def threshold(self) -> float:
        """A new best at or below this is significant: improvement_threshold x the reference (Zhao et al.'s
        `dev_loss_threshold * improve_threshold`), taken on |reference| for a negative one."""
        factor = self.config.improvement_threshold
        if self.reference >= 0:
            return self.reference * factor  # infinite before the first significant improvement
        return self.reference - (1 - factor) * abs(self.reference)

    def update(self, epoch: int, loss: float) -> Decision:
        """The decision after the validation of epoch `epoch` (from 1) with validation loss `loss`."""
        if self.stopped is not None:
            raise RuntimeError(f"early stopping already ended training after epoch {self.stopped['epoch']}")
        self.validations += 1
        k = self.validations
        improved = loss < self.best
        significant = improved and loss <= self.threshold()
        if improved:
            if significant:
                self.patience = max(self.patience, k * self.config.patience_increase)
                self.reference, self.reference_validation, self.reference_epoch = loss, k, epoch
            self.best, self.best_epoch = loss, epoch
        stop = None
        if self.patience <= k:
            since = ("no significant improvement" if self.reference_validation is None else
                     f"last significant improvement at validation {self.reference_validation} "
                     f"(epoch {self.reference_epoch})")
            stop = f"early stopping: patience {self.patience:g} reached at validation {k} ({since})"
            self.stopped = {"reason": stop, "epoch": epoch, "validation": k, "patience": self.patience,
                            "best_epoch": self.best_epoch, "last_significant_epoch": self.reference_epoch}
        return Decision(validation=k, patience=self.patience, improved=improved, significant=significant, stop=stop)

    def state_dict(self) -> dict[str, Any]:
        return {"validations": self.validations, "patience": self.patience, "best": self.best,
                "best_epoch": self.best_epoch, "reference": self.reference,
                "reference_validation": self.reference_validation, "reference_epoch": self.reference_epoch,
                "stopped": self.stopped}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.validations, self.patience = int(state["validations"]), float(state["patience"])
        self.best, self.best_epoch = float(state["best"]), state["best_epoch"]
        self.reference = float(state["reference"])
        self.reference_validation, self.reference_epoch = state["reference_validation"], state["reference_epoch"]
        self.stopped = None if state["stopped"] is None else dict(state["stopped"])

    def summary(self) -> dict[str, Any]:
        """For train_log.json: the validations counted, the final deadline, the best and the last significant
        validation's epochs, and the stop (None if the rule did not end training)."""
        return {"validations": self.validations, "patience": self.patience, "best_epoch": self.best_epoch,
                "last_significant_epoch": self.reference_epoch, "stopped": self.stopped}


def describe(config: EarlyStoppingConfig | Mapping[str, Any] | None) -> str:
    """One legible phrase for table captions and budget lines, e.g. 'patience 10 validations, raised to 2k by a new
    best at validation k at least 0.4 % below the last such one; the best kept'."""
    if config is None:
        return "none"
    if isinstance(config, Mapping):
        config = EarlyStoppingConfig(**config)
    gain = (1 - config.improvement_threshold) * 100
    best = "a new best at validation k" + ("" if gain == 0 else f" at least {gain:.3g} % below the last such one")
    return f"patience {config.patience} validations, raised to {config.patience_increase:g}k by {best}; the best kept"
