"""Plain LoRA with stock ``peft``: the baseline the ``llm_lora`` supernet is measured against.

Same recipe as a ``supernet train`` run it is compared with: the base model folder, the data
(the same ``text:`` blocks, the same batches step by step: ``data.train_batches(0, batch, seed)``),
AdamW with the run's LR, weight decay, linear warm-up then cosine decay (the engine's
``lr_factor``), gradient clipping and micro-batches, rank ``r_max`` with ``alpha`` on q/k/v/o and
gate/up/down, dropout 0. Validation loss uses the engine's scoring (mean next-token
cross-entropy over the val blocks), so the numbers compare one to one.

Used by ``benchmarks/bench_llm.py`` (quality) and ``benchmarks/bench_llm_scale.py`` (time, memory).
"""
from __future__ import annotations

import time

import torch

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def peft_model(folder, rank: int, alpha: float, dtype=torch.float32, checkpointing: bool = False):
    """Stock PEFT LoRA on the model in ``folder`` (base frozen in ``dtype``, adapters fp32)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    if checkpointing:
        turn_on = getattr(base, "activation_checkpointing_enable", None)
        if turn_on is not None:
            turn_on(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=TARGETS, lora_dropout=0.0, bias="none",
                        task_type="CAUSAL_LM")
    model = get_peft_model(base, config, autocast_adapter_dtype=True)
    for _, p in model.named_parameters():
        if p.requires_grad:
            p.data = p.data.float()
    return model


class PlainTrainer:
    """Optimizer steps of ``cfg``'s recipe (a TrainConfig: lr, weight_decay, warmup_steps, grad_clip, grad_accum)
    over ``total`` steps: AdamW, the engine's warm-up + cosine schedule, clipping, micro-batches."""

    def __init__(self, model, cfg, total: int):
        from supernet.training.trainer import lr_factor
        self.model, self.cfg = model, cfg
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(s, cfg.warmup_steps, total))

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """One optimizer step on ``(x, y)``; ``(seconds, loss)``."""
        start = time.perf_counter()
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        total = 0.0
        for xs, ys in zip(x.chunk(self.cfg.grad_accum), y.chunk(self.cfg.grad_accum)):
            logits = self.model(input_ids=xs, use_cache=False).logits  # (B, T, V)
            loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), ys.flatten()) / self.cfg.grad_accum
            loss.backward()
            total += loss.detach().item()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        return time.perf_counter() - start, total


def train_plain(model, batches, steps: int, cfg, on_step=None) -> list[float]:
    """``steps`` optimizer steps (:class:`PlainTrainer`) on ``batches``; returns each step's wall time in seconds.
    ``on_step(step, loss)`` is called after each."""
    trainer, times = PlainTrainer(model, cfg, steps), []
    for step in range(steps):
        x, y = next(batches)
        seconds, loss = trainer.step(x, y)
        times.append(seconds)
        if on_step is not None:
            on_step(step, loss)
    model.eval()
    return times


@torch.no_grad()
def val_loss(model, data) -> float:
    """Mean next-token cross-entropy (nats) over the validation blocks, as the engine scores a subnet."""
    from supernet.core.task import make_task
    from supernet.evaluation.subnet import score
    return score(_Logits(model).eval(), data.eval_batches("val", 16), make_task("language_model"))


class _Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids):
        return self.model(input_ids=ids, use_cache=False).logits
