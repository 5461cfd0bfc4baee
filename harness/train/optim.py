"""Parameter updates on behalf of a method: one Adam per parameter group, batch reduction, clipping, NaN guard.

Most methods take one step on all parameters per batch (`TextVAE.training_step`'s default). Methods with their own
schedule of updates (e.g. the aggressive encoder updates of He et al. 2019) call `minimise` on named groups.
"""
from __future__ import annotations

import math

import torch

from harness.core.config import TrainConfig


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the run, epoch and step."""


class Optimisation:
    """The optimisers of one run (one per parameter group of the method) and the update a method asks for."""

    def __init__(self, groups: dict[str, list[torch.nn.Parameter]], cfg: TrainConfig):
        self.cfg = cfg
        self.groups = groups
        self.optimizers = {name: self._optimizer(params, cfg) for name, params in groups.items()}
        self.where = ""  # set by the trainer (which run and epoch) and by check_method (the method), for messages
        self.random_batch = None  # set by the trainer: () -> one of the epoch's batches, drawn uniformly (inner loops)

    @staticmethod
    def _optimizer(params, cfg: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
        lr = cfg.lr if lr is None else lr
        if cfg.optimizer == "sgd":  # He et al. 2019 / Zhu et al. 2020: plain SGD
            return torch.optim.SGD(params, lr=lr, weight_decay=cfg.weight_decay)
        # fused: one kernel per step for all parameters instead of ~10 elementwise passes (CPU and CUDA); the
        # embedding and output matrices make the update a sizeable share of a CPU step (benchmarks/)
        return torch.optim.Adam(params, lr=lr, eps=cfg.adam_eps, weight_decay=cfg.weight_decay, fused=True)

    def set_lr(self, lr: float, restart: bool = False) -> None:
        """Every group's learning rate becomes `lr` (harness.train.lr_schedule); `restart` builds fresh optimizers instead,
        dropping momentum and Adam moments, as He et al. 2019 build new SGD optimizers at each decay."""
        if restart:
            self.optimizers = {name: self._optimizer(params, self.cfg, lr) for name, params in self.groups.items()}
            return
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr

    def reduce(self, per_sentence: torch.Tensor) -> torch.Tensor:
        """Combine per-sentence losses of a batch (the original code sums; `loss_reduction` chooses)."""
        return per_sentence.sum() if self.cfg.loss_reduction == "sum" else per_sentence.mean()

    def minimise(self, per_sentence_loss: torch.Tensor, step: int, groups: tuple[str, ...] | None = None,
                 clip_all: bool = False) -> float:
        """One gradient step on `groups` (all by default) for the reduced loss; returns the loss value.

        `grad_clip` bounds the norm of the stepped groups' gradient, or with `clip_all` the norm of every group's
        gradient, the stepped groups' scaled by it (He et al. 2019 clip `vae.parameters()` and then step the
        encoder alone: jxhe/vae-lagging-encoder text.py l.384-387, l.415-424)."""
        loss = self.reduce(per_sentence_loss)
        selected = list(self.optimizers) if groups is None else list(groups)
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            clipped = list(self.optimizers) if clip_all else selected
            params = [p for name in clipped for p in self.groups[name]]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        for name in selected:
            self.optimizers[name].step()
        # read the loss only now: on a GPU this is the step's one wait, after every kernel of it has been queued.
        # A non-finite loss has just corrupted the weights, so the run stops here, before anything is saved.
        value = float(loss.detach())
        if not math.isfinite(value):
            where = f"{self.where}: " if self.where else ""
            raise TrainingDiverged(f"{where}non-finite loss {value} at step {step}; no result was written")
        return value

    def state_dict(self) -> dict:
        return {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state[name])
