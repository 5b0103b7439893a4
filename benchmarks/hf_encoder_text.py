"""A text task where word order matters and size shows, and a small BERT pre-trained on a related task (for
bench_hf_encoder).

**The first-keyword task.** Sentences of ``length // 2 .. length`` words over ``words`` words ``w0`` ..
``w{words-1}``; the first ``keywords`` of them are keywords, the rest filler. Each sentence holds ``shown``
distinct keywords at random places; its class is the keyword that comes **first** (``keywords`` classes),
and a fraction ``noise`` of the labels is redrawn at random, so the best possible accuracy is
``1 - noise + noise / keywords`` (:func:`ceiling`). Every keyword of a sentence is equally likely to be
the class, so a bag of words is no better than guessing among the ``shown`` keywords: the model must
compare positions. Measured before this benchmark: a 2-layer BERT with 1 head and MLP 64 stayed at
chance where the 4-layer one (4 heads, MLP 256) reached 88 % of a 91 % ceiling: size matters.

**The related task** (pre-training): the same sentences, the class being the keyword that comes **last**.
The pretrained model is a ``BertForSequenceClassification`` trained on the related task, then fine-tuned
on the task's training split (the same head: both tasks have ``keywords`` classes): the user's fine-tuned
model that ``hf_encoder`` starts from.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch


def keyword_order_task(n: int, words: int = 64, keywords: int = 16, shown: int = 4, length: int = 24,
                       noise: float = 0.1, last: bool = False, seed: int = 0) -> tuple[list[list[int]], np.ndarray]:
    """``(sentences, labels (n,))``: word ids of ``n`` sentences and the keyword that comes first (``last``: last)
    in each, a fraction ``noise`` of the labels redrawn uniformly."""
    rng = np.random.default_rng([seed, 3])
    sizes = rng.integers(length // 2, length + 1, n)
    sentences, labels = [], np.zeros(n, dtype=np.int64)
    for i, size in enumerate(sizes):
        ids = rng.integers(keywords, words, size)
        places = np.sort(rng.choice(size, shown, replace=False))
        keys = rng.choice(keywords, shown, replace=False)
        ids[places] = keys
        sentences.append(ids.tolist())
        labels[i] = keys[-1] if last else keys[0]
    redraw = rng.random(n) < noise
    return sentences, np.where(redraw, rng.integers(0, keywords, n), labels)


def ceiling(keywords: int = 16, noise: float = 0.1) -> float:
    """The Bayes accuracy: right on the ``1 - noise`` kept labels, ``1 / keywords`` of the redrawn ones."""
    return 1 - noise + noise / keywords


def as_text(sentences: list[list[int]]) -> list[str]:
    """Each sentence as words ``w<id>`` separated by spaces."""
    return [" ".join(f"w{w}" for w in ids) for ids in sentences]


def word_tokenizer(words: int):
    """A BERT-style ``PreTrainedTokenizerFast`` with a fixed vocabulary: the specials (``[PAD]`` = 0), then ``w0`` ..
    ``w{words-1}`` at ids ``5 ..``, one token per word, the same ids in every process. (A WordPiece *trained* on the
    sentences orders words of tied frequency differently from process to process, so one seed's model differed
    between runs: seed 2 reached 97.7 % in one process and 65.2 % in another.)"""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from search_spaces.hf_encoder.testing import SPECIALS
    vocab = {token: i for i, token in enumerate(SPECIALS + [f"w{w}" for w in range(words)])}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[
        ("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def write_csv(path: Path, texts: list[str], labels) -> Path:
    """A ``text,label`` CSV (the ``text:`` reader's format)."""
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("text", "label"), *zip(texts, [int(v) for v in labels])])
    return path


TASK = {"words": 96, "keywords": 24, "shown": 6, "length": 40, "noise": 0.0}
SEQ_LEN = TASK["length"] + 2  # [CLS] words [SEP]: one token per word
LABELLED, RELATED, VAL_FRACTION = 30000, 12000, 0.1


def prepare(tmp: Path, args, seed: int) -> dict:
    """bench_hf_encoder's BERT side for ``seed``: the task as a CSV in ``tmp`` (``LABELLED`` sentences; the
    reader's split: ``VAL_FRACTION`` each to validation and test), a WordPiece tokenizer, and a BERT
    (``args.hidden``, 4 layers, 4 heads, MLP 4 x hidden) trained ``args.pretrain_steps`` on ``RELATED`` sentences
    of the related task (last keyword), then ``args.finetune_steps`` on the task's training split (AdamW
    ``args.pretrain_lr``, batch 32), saved in ``tmp/pretrained``."""
    from search_spaces.hf_encoder import testing
    from search_spaces.hf_encoder.static import EncoderClassifier
    from supernet.data.load import load_data
    t0 = time.time()
    sentences, labels = keyword_order_task(LABELLED, seed=seed, **TASK)
    related, related_labels = keyword_order_task(RELATED, last=True, seed=seed + 1000, **TASK)
    path = write_csv(tmp / "task.csv", as_text(sentences), labels)
    tok = word_tokenizer(TASK["words"])  # every word one token, fixed ids
    model = testing.build_text_model(len(tok), hidden=args.hidden, layers=4, heads=4, intermediate=4 * args.hidden,
                                     labels=TASK["keywords"], seed=seed, max_positions=SEQ_LEN)
    folder = testing.save_model(tmp / "pretrained", model, tok)  # the tokenizer first: the reader needs it
    ids = tok(as_text(related), padding="max_length", truncation=True, max_length=SEQ_LEN,
              return_tensors="pt")["input_ids"]
    testing.fit(model, ids, torch.as_tensor(related_labels), steps=args.pretrain_steps, lr=args.pretrain_lr, seed=seed)
    reader = {"tokenizer": str(folder), "seq_len": SEQ_LEN, "text_field": "text", "label_field": "label"}
    data = load_data(f"text:{path}", seed=seed, val_fraction=VAL_FRACTION, reader=reader)
    held, held_labels = keyword_order_task(2000, last=True, seed=seed + 2000, **TASK)
    related_accuracy = accuracy(model, tok(as_text(held), padding="max_length", truncation=True, max_length=SEQ_LEN,
                                          return_tensors="pt")["input_ids"], torch.as_tensor(held_labels))
    testing.fit(model, data.train.x, data.train.y, steps=args.finetune_steps, lr=args.pretrain_lr, seed=seed + 1)
    testing.save_model(folder, model, tok)
    k = TASK["keywords"]
    task = (f"first keyword: {TASK['length'] // 2}-{TASK['length']} words over {TASK['words']} (the first {k} "
            f"keywords), {TASK['shown']} distinct keywords per sentence, the class the one that comes first ({k} "
            f"classes), {TASK['noise']:.0%} of labels redrawn (ceiling {ceiling(k, TASK['noise']):.3f}); {LABELLED} "
            f"sentences (train / val / test {1 - 2 * VAL_FRACTION:.0%} / {VAL_FRACTION:.0%} / {VAL_FRACTION:.0%}); "
            f"BERT hidden {args.hidden}, 4 layers, 4 heads, MLP {4 * args.hidden}: trained {args.pretrain_steps} "
            f"steps on {RELATED} sentences of the related task (the last keyword), then fine-tuned "
            f"{args.finetune_steps} steps on the task (AdamW {args.pretrain_lr}, batch 32)")
    facts = {"ceiling_accuracy": ceiling(k, TASK["noise"]), "related_task_accuracy": related_accuracy,
             "pretrain_seconds": round(time.time() - t0, 1)}
    return {"spec": f"text:{path}", "folder": str(folder), "data": data, "val_fraction": VAL_FRACTION,
            "space_options": {"model": str(folder), "seq_len": SEQ_LEN}, "task": task, "facts": facts,
            "pretrained": EncoderClassifier(model.eval(), "text", 0)}



def accuracy(model, ids: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of a ``...ForSequenceClassification`` on token ids (padding id 0 masked)."""
    with torch.no_grad():
        return float((model(input_ids=ids, attention_mask=(ids != 0).long()).logits.argmax(-1) == labels)
                     .double().mean())
