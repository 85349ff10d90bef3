"""The training loop in small named steps: train_step, train_epoch, evaluate,
checkpoint_and_earlystop; ``fit`` strings them together and can resume after a kill."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from dipn import outputs
from dipn.samples.store import SampleStore
from dipn.errors import DipnValidationError
from dipn.training.metrics import task_metrics
from dipn.features import TASKS as LABELS
from dipn.models import build_model_for_data, multitask_loss
from dipn.models.embeddings import set_embedding_dropout, tied_embeddings
from dipn.training import batches, checkpoint, distributed, runtime
from dipn.training.compiled import Forward
from dipn.training.config import TrainConfig
from dipn.training.predict import predict
from dipn.training.prefetch import prefetched
from dipn.training.task_epochs import TaskEpochs, freeze_all_but, task_branches


@dataclass
class TrainState:
    epoch: int = 0  # the epoch in progress (0-based)
    step_in_epoch: int = 0  # batches of this epoch already applied
    global_step: int = 0
    best_score: float = -math.inf
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, Any] = field(default_factory=dict)  # TaskEpochs: each task's best epoch, the retired


class Trainer:
    def __init__(
        self,
        store: SampleStore,
        config: TrainConfig,
        run_dir: str | Path,
        rank: distributed.Rank | None = None,
        progress: bool = True,
    ) -> None:
        self.store, self.config, self.run_dir = store, config, Path(run_dir)
        self.rank = rank or distributed.Rank()
        self.progress = progress and self.rank.is_main
        self.device = runtime.resolve_device(config.device)
        self.threads = runtime.set_threads(config.threads)
        runtime.keep_freed_memory()
        torch.manual_seed(config.seed)
        overrides = {name: getattr(config, name) for name in ("dropout", "action_age_horizon_hours")
                     if getattr(config, name) is not None} or None  # fmt: skip
        model = build_model_for_data(config.model, config.variant, store.manifest.config, store.groups_present,
                                     overrides)  # fmt: skip
        set_embedding_dropout(model, config.embedding_dropout)
        self.model = model.to(self.device)
        self.tied = tied_embeddings(self.model)  # found once: the step loop only runs their tie_rows
        if config.threads is None and self.device.type == "cpu" and not config.compile:
            runtime.adapt_threads(self.model)  # the default: chosen from the steps' own wall time
        # The weights' moving average (--ema-decay): its copy of the model shares the thread hook.
        self.average = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
                        if config.ema_decay is not None else None)  # fmt: skip
        self.tasks = tuple(getattr(self.model.config, "tasks", LABELS))
        self.branches = task_branches(self.model, self.tasks)  # None: one epoch for all tasks
        self.task_epochs = TaskEpochs()
        self.input_names = tuple(self.model.input_names)
        self.parallel = distributed.wrap(self.model, self.rank, self.device)
        self.forward = Forward(self.parallel, config.compile)
        # Mixed precision: bfloat16 on CPU (same range as fp32, no loss scaling), float16 on CUDA.
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.amp and self.amp_dtype == torch.float16)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, eps=config.adam_eps, betas=(config.beta1, config.beta2),
            weight_decay=config.weight_decay,
        )
        # Early stopping and the choice of best.pt see the validation days only; eval is the test.
        self.train_indices, self.eval_indices = batches.fit_splits(store, config.max_train_samples,
                                                                   config.max_eval_samples, config.seed)  # fmt: skip
        self.state = TrainState()

    # ---- steps ---------------------------------------------------------------------------
    def train_step(self, global_batch: np.ndarray) -> float:
        return self.apply_step(self.gather(global_batch))

    def gather(self, global_batch: np.ndarray) -> dict[str, torch.Tensor]:
        """This process's share of a global batch as CPU tensors (pinned for a copy to CUDA)."""
        local = batches.local_slice(global_batch, self.rank.rank, self.rank.world)
        tensors = batches.to_tensors(self.store, local, self.input_names)
        return {k: v.pin_memory() for k, v in tensors.items()} if self.device.type == "cuda" else tensors

    def apply_step(self, tensors: dict[str, torch.Tensor]) -> float:
        """One optimizer step on a gathered batch; the loss."""
        self.parallel.train()
        tensors = {k: v.to(self.device, non_blocking=True) for k, v in tensors.items()}
        try:
            loss = self._forward_backward(tensors)
        except Exception as error:  # noqa: BLE001 - compilation can fail in any way; eager shows real errors
            if not self.forward.compiled:
                raise
            self.forward.fall_back(error)
            loss = self._forward_backward(tensors)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        for embedding in self.tied:  # ids beyond an action-age horizon keep reading as "none"
            embedding.tie_rows()
        if self.average is not None:
            self.average.update_parameters(self.model)
        self.state.global_step += 1
        self.state.step_in_epoch += 1
        value = float(loss.detach())
        self.require_finite(value)
        return value

    def require_finite(self, loss: float) -> None:
        """Stop a diverging run at the step it diverged, before any checkpoint holds its weights."""
        step, lr = self.state.global_step, self.config.lr
        weights = torch.stack([p.detach().float().abs().sum() for p in self.model.parameters()]).sum()
        if not (math.isfinite(loss) and bool(torch.isfinite(weights))):
            what = f"the loss is {loss}" if not math.isfinite(loss) else "weights are no longer finite"
            raise DipnValidationError(f"training diverged at step {step}: {what} (NaN or infinity); no checkpoint "
                                      f"holds it: train again with a lower --lr (this run: {lr:g})")  # fmt: skip

    def _forward_backward(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.config.amp):
            logits = self.forward(**{n: tensors[n] for n in self.input_names})
            loss = multitask_loss(logits, tensors, self.task_epochs.active(self.tasks))
        self.scaler.scale(loss).backward()
        return loss

    def train_epoch(self) -> dict[str, float]:
        cfg, state = self.config, self.state
        plan = batches.epoch_batches(self.train_indices, cfg.batch_size, cfg.seed, state.epoch, cfg.epoch_samples)
        losses, seen, started = [], 0, time.perf_counter()
        bar = tqdm(total=len(plan), initial=state.step_in_epoch, disable=not self.progress,
                   desc=f"epoch {state.epoch + 1}/{cfg.epochs}", unit="batch", dynamic_ncols=True)  # fmt: skip
        remaining = plan[state.step_in_epoch :]
        if cfg.max_steps is not None:
            remaining = remaining[: max(cfg.max_steps - state.global_step, 0)]
        for tensors, global_batch in zip(prefetched(remaining, self.gather), remaining):
            losses.append(self.apply_step(tensors))
            seen += len(global_batch)
            rate = seen / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", samples_per_s=f"{rate:,.0f}")
            bar.update()
            if state.global_step % cfg.checkpoint_every == 0:
                self.save(self.run_dir / "last.pt")
        bar.close()
        elapsed = time.perf_counter() - started
        finished = state.step_in_epoch >= len(plan)
        return {"train_loss": float(np.mean(losses)) if losses else float("nan"),
                "samples_per_s": seen / elapsed if elapsed > 0 else 0.0, "epoch_complete": finished}  # fmt: skip

    @property
    def scored(self) -> nn.Module:
        """The weights val scores and every checkpoint's ``model_state`` holds (what is exported and
        shipped): their moving average when averaging (``TrainConfig.ema_decay``), else the trained ones."""
        return self.average.module if self.average is not None else self.model

    def evaluate(self) -> dict[str, Any]:
        preds = predict(self.scored, self.store, self.eval_indices, device=self.device)
        return {task: task_metrics(preds[task], preds[f"p_{task}"]) for task in self.tasks}

    def checkpoint_and_earlystop(self, metrics: dict[str, Any]) -> bool:
        """Record the epoch, keep the best model and each task's best epoch, retire a task that
        stopped improving (``dipn.training.task_epochs``), and say whether to stop."""
        state, tasks = self.state, self.task_epochs
        epoch = state.epoch + 1
        aucs = {t: metrics[t]["auc"] for t in self.tasks}
        improved_tasks = tasks.record(epoch, aucs, self.tasks) if self.branches else []
        score = tasks.score(aucs, self.tasks)  # nan: the validation split has one class
        record = {"epoch": epoch, "step": state.global_step, "score": score, **metrics,
                  "tasks": {"best_epoch": dict(tasks.best_epoch), "retired": list(tasks.retired)}}  # fmt: skip
        state.history.append(record)
        improved = score > state.best_score or math.isnan(state.best_score)
        if improved:
            state.best_score, state.bad_epochs = score, 0
        else:
            state.bad_epochs += 1
        state.epoch += 1
        state.step_in_epoch = 0
        for task in improved_tasks:
            self.save(self.run_dir / f"best_{task}.pt")
        if improved:
            self.save(self.run_dir / "best.pt")
        if self.branches:
            self._retire(tasks.due(self.tasks, self.config.patience))
        self.save(self.run_dir / "last.pt")
        metrics = self.run_dir / "metrics.jsonl"  # rewritten whole: a kill never leaves half a line
        earlier = metrics.read_text() if metrics.exists() else ""
        outputs.write_text(metrics, earlier + json.dumps(record) + "\n")
        if self.branches:
            return not tasks.active(self.tasks)
        return state.bad_epochs >= self.config.patience

    def _best_epoch(self) -> int:
        """The epoch best.pt holds: the first best val score, or, while every score is NaN (a
        validation split of one class), the latest epoch, which each such epoch saved again."""
        scores = np.array([h["score"] for h in self.state.history], dtype=float)
        at = len(scores) - 1 if np.isnan(scores).all() else int(np.nanargmax(scores))
        return self.state.history[at]["epoch"]

    def _retire(self, due: list[str]) -> None:
        """Tasks that stopped improving keep their best epoch (``dipn.training.task_epochs``)."""
        tasks = self.task_epochs
        if not due:
            return
        if tasks.trunk_epoch is None:  # the first time: back to best.pt, the trunk freezes there
            back_to = self._best_epoch()
            self.model.load_state_dict(checkpoint.load(self.run_dir / "best.pt")["model_state"])
            self._restart_average()
            at_best = [t for t in self.tasks if tasks.best_epoch.get(t) == back_to]
            tasks.freeze_trunk(self.state.history, back_to, self.tasks, at_best)
            for task in tasks.active(self.tasks):  # their best so far is this model's
                self.save(self.run_dir / f"best_{task}.pt")
            message = f"back to epoch {back_to} (best.pt), trunk frozen"
        else:  # a branch on the frozen trunk: its best epoch's weights
            best = {t: checkpoint.load(self.run_dir / f"best_{t}.pt")["model_state"] for t in due}
            for task in due:
                self.branches[task].load_state_dict(
                    {k.removeprefix(f"heads.branches.{task}."): v for k, v in best[task].items()
                     if k.startswith(f"heads.branches.{task}.")})  # fmt: skip
            tasks.retired.extend(due)
            self._restart_average()
            message = "branch back to its best epoch and frozen"
        freeze_all_but(self.model, self.branches, tasks.active(self.tasks))
        if self.progress:
            tqdm.write(f"{', '.join(due)}: no better val AUC for {self.config.patience} epoch(s); {message}; "
                       f"retired {', '.join(tasks.retired) or 'none'}; training "
                       f"{', '.join(tasks.active(self.tasks)) or 'nothing'} on")  # fmt: skip

    def _restart_average(self) -> None:
        """After weights were put back to a best epoch's (which hold that epoch's average), the
        average starts again from the model as it now is: a frozen trunk or branch then scores
        exactly as at that epoch (its average of equal weights stays equal), and a branch still
        training averages its steps from here on."""
        if self.average is not None:
            self.average.module.load_state_dict(self.model.state_dict())

    # ---- the whole run -------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        cfg = self.config
        if self.progress:
            tqdm.write(f"training on {self.device} with {self.threads} torch thread(s) per process")
        if self.rank.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.store.manifest.save(self.run_dir / "features.json")
            outputs.write_text(self.run_dir / "train_config.json", json.dumps(cfg.to_dict(), indent=1) + "\n")
        while self.state.epoch < cfg.epochs and not self._step_limit_reached() and not self._all_retired():
            train = self.train_epoch()
            if not train["epoch_complete"]:  # stopped by max_steps inside the epoch
                if self.rank.is_main:
                    self.save(self.run_dir / "last.pt")
                break
            stop = False
            if self.rank.is_main:
                metrics = self.evaluate()
                metrics["train"] = train
                stop = self.checkpoint_and_earlystop(metrics)
                self._report(metrics)
            else:
                self.state.epoch += 1
                self.state.step_in_epoch = 0
            distributed.barrier(self.rank)
            if stop:
                break
        if self.rank.is_main and not (self.run_dir / "best.pt").exists():
            self.save(self.run_dir / "best.pt")
        return {"best_score": self.state.best_score, "history": self.state.history,
                "global_step": self.state.global_step, "run_dir": str(self.run_dir)}  # fmt: skip

    def _step_limit_reached(self) -> bool:
        return self.config.max_steps is not None and self.state.global_step >= self.config.max_steps

    def _all_retired(self) -> bool:
        """Every task kept its best epoch: nothing is left to train (a finished run resumed)."""
        return bool(self.branches) and not self.task_epochs.active(self.tasks)

    def _report(self, metrics: dict[str, Any]) -> None:
        if not self.progress:
            return
        parts = [f"{t} AUC {metrics[t]['auc']:.4f}" for t in self.tasks]
        tqdm.write(f"epoch {self.state.epoch}: " + ", ".join(parts)
                   + f", train loss {metrics['train']['train_loss']:.4f}, "
                   f"{metrics['train']['samples_per_s']:,.0f} samples/s")  # fmt: skip

    # ---- checkpoints ---------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        if not self.rank.is_main:
            return path
        s = self.state
        return checkpoint.save(path, {
            "model_name": self.config.model,
            "model_config": checkpoint.model_config_dict(self.model),
            "model_state": self.scored.state_dict(),
            **({"trained_state": self.model.state_dict(), "averaged_steps": int(self.average.n_averaged)}
               if self.average is not None else {}),
            "feature_manifest": self.store.manifest.to_dict(),
            "train_config": self.config.to_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "train_state": {"epoch": s.epoch, "step_in_epoch": s.step_in_epoch, "global_step": s.global_step,
                            "best_score": s.best_score, "bad_epochs": s.bad_epochs, "history": s.history,
                            "tasks": self.task_epochs.to_dict()},
            "torch_rng": torch.get_rng_state(),
            "metrics": s.history[-1] if s.history else {},
            "samples": str(self.store.root),
            "git_revision": checkpoint.git_revision(),
        })  # fmt: skip

    def resume(self, path: str | Path) -> None:
        """Continue a killed run from its last checkpoint: same weights, optimizer, position."""
        ckpt = checkpoint.load(path)
        checkpoint.require_keys(ckpt, Path(path), checkpoint.RESUME_KEYS)
        checkpoint.require_same_run(ckpt, path, self.config.model, checkpoint.model_config_dict(self.model),
                                    self.store.manifest)  # fmt: skip
        self.model.load_state_dict(ckpt.get("trained_state", ckpt["model_state"]))
        if self.average is not None:
            self.average.module.load_state_dict(ckpt["model_state"])
            self.average.n_averaged.fill_(int(ckpt.get("averaged_steps", 1)))
        self.optimizer.load_state_dict(ckpt["optimizer_state"])
        self.state = TrainState(**ckpt["train_state"])
        self.task_epochs = TaskEpochs(**self.state.tasks)
        if self.branches and self.task_epochs.retired:
            freeze_all_but(self.model, self.branches, self.task_epochs.active(self.tasks))
        torch.set_rng_state(ckpt["torch_rng"])
