"""A text task where word order matters and size shows, and a small BERT pre-trained on it (for bench_hf_encoder).

**The word-order task.** ``classes`` hidden "styles" write sentences over the same ``words`` words
(``w0`` .. ``w{words-1}``). Style ``c`` has its own permutation ``pi_c`` of the words: the first
word is uniform, and each next word is ``pi_c(previous)`` with probability ``p``, else uniform. Every
style uses every word equally often (a permutation of the uniform distribution is uniform), so a
bag of words carries no information: only which words follow which does. Sentences have
``length // 2 .. length`` words, so short ones hold few telling pairs and no model reaches 100 %.
A model must hold ``classes x words`` word pairs, so a smaller one remembers fewer: size matters.

The Bayes rule counts, for each style, the adjacent pairs ``(a, b)`` with ``b = pi_c(a)``, and picks
the style with the most (the likelihood is ``prod_t (p [match] + (1 - p) / words)``, increasing in
the count); :func:`oracle_accuracy` is its expected accuracy (ties split evenly), the task's ceiling.

**The pretrained model.** A BERT (``BertForMaskedLM``) pre-trained by masked-language modelling
(transformers' ``DataCollatorForLanguageModeling``: 15 % of tokens, 80/10/10) on unlabelled sentences
of all styles, then loaded as ``BertForSequenceClassification`` (new pooler and classifier) and
fine-tuned on the labelled training split: the user's fine-tuned model that ``hf_encoder`` starts from.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch


def word_order_task(n: int, words: int = 48, classes: int = 8, length: int = 24, p: float = 0.12,
                    seed: int = 0, chains: int = 0) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """``(sentences, labels (n,), perms (classes, words))``: ``n`` sentences of word ids, each of
    ``length // 2 .. length`` words, written in the style of its label. ``chains`` seeds the styles'
    permutations (the task), ``seed`` the sentences drawn from them."""
    perms = np.stack([np.random.default_rng([chains, c]).permutation(words) for c in range(classes)])
    rng = np.random.default_rng([seed, 1])
    labels = rng.integers(0, classes, n)
    sizes = rng.integers(length // 2, length + 1, n)
    sentences = []
    for label, size in zip(labels, sizes):
        ids = [int(rng.integers(words))]
        follow, fresh = rng.random(size - 1) < p, rng.integers(0, words, size - 1)
        for f, w in zip(follow, fresh):
            ids.append(int(perms[label, ids[-1]]) if f else int(w))
        sentences.append(ids)
    return sentences, labels, perms


def pair_counts(sentences: list[list[int]], perms: np.ndarray) -> np.ndarray:
    """``(n, classes)``: adjacent pairs ``(a, b)`` of each sentence with ``b = perms[c, a]``."""
    out = np.zeros((len(sentences), len(perms)), dtype=np.int64)
    for i, ids in enumerate(sentences):
        a, b = np.asarray(ids[:-1]), np.asarray(ids[1:])
        out[i] = (perms[:, a] == b[None]).sum(1)
    return out


def oracle_accuracy(sentences: list[list[int]], labels: np.ndarray, perms: np.ndarray) -> float:
    """Expected accuracy of the Bayes rule (most matching pairs; a tie of ``k`` styles right ``1/k`` of the time)."""
    counts = pair_counts(sentences, perms)
    best = counts == counts.max(1, keepdims=True)
    return float(np.mean(best[np.arange(len(labels)), labels] / best.sum(1)))


def as_text(sentences: list[list[int]]) -> list[str]:
    """Each sentence as words ``w<id>`` separated by spaces."""
    return [" ".join(f"w{w}" for w in ids) for ids in sentences]


def write_csv(path: Path, texts: list[str], labels) -> Path:
    """A ``text,label`` CSV (the ``text:`` reader's format)."""
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("text", "label"), *zip(texts, [int(v) for v in labels])])
    return path


def mlm_pretrain(tokenizer, texts: list[str], hidden: int, layers: int, heads: int, intermediate: int,
                 seq_len: int, steps: int, lr: float = 1e-3, batch: int = 64, seed: int = 0):
    """A ``BertForMaskedLM`` trained ``steps`` AdamW steps (linear warm-up 5 %, then constant) on ``texts``
    with transformers' MLM collator; returns ``(model, last 50 steps' mean loss)``."""
    from transformers import BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling
    ids = tokenizer(texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="pt")["input_ids"]
    cfg = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=intermediate, max_position_embeddings=seq_len + 2, pad_token_id=0)
    torch.manual_seed(seed)
    model = BertForMaskedLM(cfg).float().train()
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
    g, losses = torch.Generator().manual_seed(seed), []
    for _ in range(steps):
        x = ids[torch.randint(0, len(ids), (batch,), generator=g)]
        inputs, labels = collator.torch_mask_tokens(x.clone(), special_tokens_mask=_specials(tokenizer, x))
        loss = model(input_ids=inputs, attention_mask=(x != 0).long(), labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return model.eval(), float(np.mean(losses[-50:]))


def _specials(tokenizer, x: torch.Tensor) -> torch.Tensor:
    """True where ``x`` holds a special token ([PAD], [CLS], [SEP], ...): never masked."""
    return torch.isin(x, torch.tensor(tokenizer.all_special_ids))


def classifier_from_mlm(mlm, folder: Path, tokenizer, labels: int):
    """The MLM model's encoder as a ``BertForSequenceClassification`` of ``labels`` classes (its pooler and
    classifier new, seeded by the caller), saved through ``folder`` and loaded back with ``from_pretrained``."""
    from transformers import BertForSequenceClassification
    mlm.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    model = BertForSequenceClassification.from_pretrained(folder, num_labels=labels)
    model.config.architectures = ["BertForSequenceClassification"]
    return model.float()


TASK = {"words": 48, "classes": 8, "length": 24, "p": 0.2}  # Bayes accuracy ~0.89
SEQ_LEN = TASK["length"] + 2  # [CLS] words [SEP]: one token per word
LABELLED, UNLABELLED, VAL_FRACTION = 30000, 20000, 0.1


def prepare(tmp: Path, args, seed: int) -> dict:
    """bench_hf_encoder's BERT side for ``seed``: the task as a CSV in ``tmp`` (``LABELLED`` sentences; the
    reader's split: ``VAL_FRACTION`` each to validation and test), a tokenizer and a BERT (``args.hidden``,
    4 layers, 4 heads, MLP 4 x hidden) pre-trained by MLM on ``UNLABELLED`` other sentences for
    ``args.pretrain_steps``, then fine-tuned ``args.finetune_steps`` on the training split, saved in
    ``tmp/pretrained``; the same styles (``chains=0``) for every seed."""
    from search_spaces.hf_encoder import testing
    from supernet.data.load import load_data
    sentences, labels, perms = word_order_task(LABELLED, seed=seed, **TASK)
    unlabelled = as_text(word_order_task(UNLABELLED, seed=seed + 1000, **TASK)[0])
    tok = testing.train_tokenizer(unlabelled, 120)
    path = write_csv(tmp / "task.csv", as_text(sentences), labels)
    t0 = time.time()
    mlm, mlm_loss = mlm_pretrain(tok, unlabelled, args.hidden, 4, 4, 4 * args.hidden, SEQ_LEN, args.pretrain_steps,
                                 seed=seed)
    folder = tmp / "pretrained"
    torch.manual_seed(seed)
    model = classifier_from_mlm(mlm, folder, tok, TASK["classes"])
    reader = {"tokenizer": str(folder), "seq_len": SEQ_LEN, "text_field": "text", "label_field": "label"}
    data = load_data(f"text:{path}", seed=seed, val_fraction=VAL_FRACTION, reader=reader)
    testing.fit(model, data.train.x, data.train.y, steps=args.finetune_steps, lr=args.pretrain_lr, seed=seed)
    testing.save_model(folder, model, tok)
    task = (f"word order: {TASK['classes']} styles over the same {TASK['words']} words, each next word its style's "
            f"permutation of the previous one with p={TASK['p']}, else uniform; {TASK['length'] // 2}-"
            f"{TASK['length']} words; {LABELLED} sentences (train / val / test {1 - 2 * VAL_FRACTION:.0%} / "
            f"{VAL_FRACTION:.0%} / {VAL_FRACTION:.0%}); BERT hidden {args.hidden}, 4 layers, 4 heads, MLP "
            f"{4 * args.hidden}: MLM {args.pretrain_steps} steps on {UNLABELLED} other sentences, then fine-tuned "
            f"{args.finetune_steps} steps (AdamW {args.pretrain_lr}, batch 32)")
    facts = {"oracle_accuracy": oracle_accuracy(sentences, labels, perms), "mlm_final_loss": mlm_loss,
             "pretrain_seconds": round(time.time() - t0, 1)}
    from search_spaces.hf_encoder.static import EncoderClassifier
    return {"spec": f"text:{path}", "folder": str(folder), "data": data, "val_fraction": VAL_FRACTION,
            "space_options": {"model": str(folder), "seq_len": SEQ_LEN}, "task": task, "facts": facts,
            "pretrained": EncoderClassifier(model.eval(), "text", 0)}
