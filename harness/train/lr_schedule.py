"""Learning-rate schedules of the language-modelling baselines' own code: decay when validation stops improving (He et
al., Kim et al.), or a cosine restarted every cycle of the KL weight (Fu et al.).

Reference code, details and deviations: docs/methods.md, "Learning-rate schedules (harness/train/lr_schedule.py)".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from harness.core.config import LrDecayConfig


@dataclass(frozen=True)
class Decision:
    """What the trainer does after one validated epoch."""

    lr: float  # the lr of the next epoch
    decayed: bool = False
    reload_best: bool = False
    restart_optimizer: bool = False
    stop: str | None = None  # why training ends after this epoch, or None


class LrSchedule:
    def __init__(self, config: LrDecayConfig, lr: float):
        self.config = config
        self.base_lr = float(lr)
        self.lr = float(lr)
        self.not_improved = 0  # validations in a row without improvement
        self.reference = math.inf  # plateau: the loss a validation must not exceed (He et al.'s opt_dict["best_loss"])
        self.best = math.inf  # every-epoch-after-plateau: the best loss so far (Kim et al.'s best_val_nll)
        self.decaying = False  # every-epoch-after-plateau: the plateau was reached, every epoch decays from now on
        self.decays = 0
        self.stopped: dict | None = None  # {"epoch": n, "reason": "..."} once the schedule ended training

    def step(self, epoch: int, loss: float) -> Decision:
        """The decision after validated epoch `epoch` (from 1) with validation loss `loss`."""
        if self.stopped is not None:
            raise RuntimeError(f"the lr schedule already stopped training after epoch {self.stopped['epoch']}")
        cfg = self.config
        decay = False
        if cfg.mode == "cosine-per-cycle":
            self.lr = cosine_in_cycle(self.base_lr, epoch + 1, cfg.cycle_epochs)
            return Decision(lr=self.lr)
        if cfg.mode == "plateau":
            if loss > self.reference:
                self.not_improved += 1
                if self.not_improved >= cfg.patience and epoch >= cfg.start_epoch:
                    decay, self.not_improved, self.reference = True, 0, loss
            else:
                self.not_improved, self.reference = 0, loss
        else:  # every-epoch-after-plateau
            if loss < self.best:
                self.best, self.not_improved = loss, 0
            else:
                self.not_improved += 1
                if self.not_improved >= cfg.patience and epoch >= cfg.start_epoch:
                    self.decaying = True
            decay = self.decaying
        if not decay:
            return Decision(lr=self.lr)
        self.lr *= cfg.factor
        self.decays += 1
        stop = None
        if cfg.max_decays is not None and self.decays >= cfg.max_decays:
            stop = f"lr decayed {self.decays} times (max_decays {cfg.max_decays})"
        elif cfg.min_lr is not None and self.lr < cfg.min_lr:
            stop = f"lr {self.lr:g} fell below min_lr {cfg.min_lr:g}"
        if stop is not None:
            self.stopped = {"epoch": epoch, "reason": stop}
        return Decision(lr=self.lr, decayed=True, reload_best=cfg.reload_best,
                        restart_optimizer=cfg.restart_optimizer, stop=stop)

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "not_improved": self.not_improved, "reference": self.reference, "best": self.best,
                "decaying": self.decaying, "decays": self.decays, "stopped": self.stopped}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.lr, self.not_improved, self.reference = float(state["lr"]), int(state["not_improved"]), state["reference"]
        self.best, self.decaying, self.decays = state["best"], bool(state["decaying"]), int(state["decays"])
        self.stopped = None if state["stopped"] is None else dict(state["stopped"])

    def summary(self) -> dict[str, Any]:
        """For train_log.json: the final lr, how many decays, and whether (and why) the schedule ended training."""
        return {"final_lr": self.lr, "decays": self.decays, "stopped": self.stopped}


def cosine_in_cycle(base_lr: float, epoch: int, cycle_epochs: int) -> float:
    """The lr of `epoch` (from 1) under Fu et al.'s cosine: base x (1 + cos(pi t)) / 2, t = ((epoch - 1) mod N) / N,
    set at the start of every epoch; it restarts at `base_lr` with each cycle of the KL weight
    (haofuml/cyclical_annealing language_model/train_text_cyc_ptb.py l.167-170, N = `--cycle` 10)."""
    position = ((epoch - 1) % cycle_epochs) / cycle_epochs
    return base_lr * 0.5 * (1.0 + math.cos(position * math.pi))


def describe(config: LrDecayConfig | Mapping[str, Any] | None) -> str:
    """One legible phrase for table captions, e.g. 'x0.5 after 2 epochs in a row without improvement, not before
    epoch 16, best weights reloaded, optimizer restarted; stop after 5 decays'."""
    if config is None:
        return "none"
    if isinstance(config, Mapping):
        config = LrDecayConfig(**config)
    if config.mode == "cosine-per-cycle":
        return f"cosine from the lr towards 0 over every {config.cycle_epochs} epochs, restarting at each cycle"
    if config.mode == "plateau":
        text = f"x{config.factor:g} after " + ("an epoch without improvement" if config.patience == 1 else
                                               f"{config.patience} epochs in a row without improvement")
    else:
        text = f"x{config.factor:g} after every epoch once " + (
            "an epoch did not improve" if config.patience == 1 else f"{config.patience} epochs in a row did not improve")
    if config.start_epoch > 1:
        text += f", not before epoch {config.start_epoch}"
    if config.reload_best:
        text += ", best weights reloaded"
    if config.restart_optimizer:
        text += ", optimizer restarted"
    stops = ([f"after {config.max_decays} decays"] if config.max_decays is not None else []) + (
        [f"below lr {config.min_lr:g}"] if config.min_lr is not None else [])
    return text + (f"; stop {' or '.join(stops)}" if stops else "")
