"""Small Hugging Face classifiers built locally (no hub): a WordPiece tokenizer trained on your text and a
random BERT / RoBERTa (or XLM-RoBERTa, CamemBERT, ELECTRA, DistilBERT), or a random ViT / DeiT with its image processor, saved with ``save_pretrained``.

For tests, benchmarks and examples; a real user points ``--model`` at their own model folder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import torch

TEXT = {"bert": ("BertConfig", "BertForSequenceClassification"),
        "roberta": ("RobertaConfig", "RobertaForSequenceClassification"),
        "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForSequenceClassification"),
        "camembert": ("CamembertConfig", "CamembertForSequenceClassification"),
        "electra": ("ElectraConfig", "ElectraForSequenceClassification"),
        "distilbert": ("DistilBertConfig", "DistilBertForSequenceClassification")}
ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert")  # padding id 1, positions offset past it
IMAGE = {"vit": ("ViTConfig", "ViTForImageClassification"), "deit": ("DeiTConfig", "DeiTForImageClassification")}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 200):
    """A BERT-style WordPiece tokenizer (``PreTrainedTokenizerFast``; ``[PAD]`` = 0, ``[CLS] ... [SEP]``)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                                             show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls),
                                                                                               ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def build_text_model(vocab_size: int, model_type: str = "bert", hidden: int = 32, layers: int = 2, heads: int = 4,
                     intermediate: int = 64, labels: int = 3, seed: int = 0, max_positions: int = 64, **config):
    """A randomly initialised ``...ForSequenceClassification`` (fp32); ``config``: more config fields."""
    import transformers
    cfg_cls, model_cls = TEXT[model_type]
    pad = 1 if model_type in ROBERTA_LIKE else 0
    sizes = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=intermediate)
    if model_type == "distilbert":
        sizes = dict(dim=hidden, n_layers=layers, n_heads=heads, hidden_dim=intermediate)
    cfg = getattr(transformers, cfg_cls)(vocab_size=vocab_size, num_labels=labels, pad_token_id=pad,
                                         max_position_embeddings=max_positions + pad + 1, **sizes, **config)
    torch.manual_seed(seed)
    return getattr(transformers, model_cls)(cfg).float()


def build_image_model(model_type: str = "vit", image_size: int = 16, patch: int = 4, channels: int = 3,
                      hidden: int = 32, layers: int = 2, heads: int = 4, intermediate: int = 64, labels: int = 3,
                      seed: int = 0, **config):
    """A randomly initialised ``...ForImageClassification`` (fp32); ``config``: more config fields."""
    import transformers
    cfg_cls, model_cls = IMAGE[model_type]
    cfg = getattr(transformers, cfg_cls)(image_size=image_size, patch_size=patch, num_channels=channels,
                                         hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                         intermediate_size=intermediate, num_labels=labels, **config)
    torch.manual_seed(seed)
    return getattr(transformers, model_cls)(cfg).float()


def image_processor(size: int, channels: int = 3):
    """A ``ViTImageProcessor`` for ``size`` x ``size`` images, mean / std 0.5."""
    from transformers import ViTImageProcessor
    return ViTImageProcessor(size={"height": size, "width": size}, image_mean=[0.5] * channels,
                             image_std=[0.5] * channels)


def save_model(folder: str | os.PathLike, model, preprocessor, max_shard_size: str | None = None) -> Path:
    """``save_pretrained`` of the model (safetensors, sharded at ``max_shard_size`` when given) and its tokenizer
    or image processor into ``folder``."""
    folder = Path(folder)
    model.save_pretrained(folder, **({"max_shard_size": max_shard_size} if max_shard_size else {}))
    preprocessor.save_pretrained(folder)
    return folder


def keyword_task(n: int, vocab: int = 50, seq_len: int = 16, classes: int = 3, seed: int = 0):
    """Token ids ``(n, seq_len)`` (ids ``>= classes + 2``, some padding with id 0) and labels ``(n,)``: the class
    is which of the keyword ids ``2 .. classes + 1`` comes first. A task whose solution needs attention."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(classes + 2, vocab, (n, seq_len), generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    first = torch.randint(1, seq_len // 2, (n,), generator=g)
    other = torch.randint(0, classes, (n,), generator=g)
    rows = torch.arange(n)
    x[rows, first] = y + 2
    x[rows, first + 1 + torch.randint(0, seq_len // 2 - 1, (n,), generator=g)] = other + 2
    lengths = torch.randint(seq_len - 3, seq_len + 1, (n,), generator=g)
    x[torch.arange(seq_len)[None] >= lengths[:, None]] = 0
    return x, y


def fit(model, x: torch.Tensor, y: torch.Tensor, steps: int = 300, lr: float = 2e-3, batch: int = 32, seed: int = 0,
        pad_id: int | None = 0):
    """A plain AdamW loop on ``(x, y)`` (text ids or images) for ``steps``; the model in eval mode after."""
    from ..hf_compat import encoder_logits
    kind = "text" if x.dtype == torch.long else "image"
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (batch,), generator=g)
        loss = torch.nn.functional.cross_entropy(encoder_logits(model, x[idx], kind, pad_id), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def noisy_keyword_task(n: int, classes: int = 4, noise: float = 0.15, seed: int = 0):
    """:func:`keyword_task` with a fraction ``noise`` of labels redrawn at random (a model cannot reach zero loss)."""
    x, y = keyword_task(n, classes=classes, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    flip = torch.rand(len(y), generator=g) < noise
    return x, torch.where(flip, torch.randint(0, classes, (len(y),), generator=g), y)


def ordering_effect(folder: str | os.PathLike, seed: int, steps: int = 300, n: int = 2400, calib: int = 500,
                    hidden: float | None = None) -> dict:
    """Train a small BERT (2 layers, 4 heads, MLP 64, hidden 32) on :func:`noisy_keyword_task` for ``steps``, save it
    into ``folder``, and measure the held-out loss of the largest and smallest subnets (1 head, MLP 16 per layer)
    of the ``hf_encoder`` supernet over it without and with the importance order (from ``calib`` examples).
    ``hidden``: the smallest subnet is instead every head and channel at this fraction of the hidden size (the
    hidden order's effect alone)."""
    from dataclasses import replace

    import torch.nn.functional as F

    from supernet.core.registry import build_supernet, space_config

    from .config import with_model
    x, y = noisy_keyword_task(n)
    train = int(n * 0.75)
    model = build_text_model(50, hidden=32, layers=2, heads=4, intermediate=64, labels=4, seed=seed)
    fit(model, x[:train], y[:train], steps=steps, seed=seed)
    save_model(folder, model, train_tokenizer(["a b c"], 60))
    fractions = (1.0,) if hidden else (0.25, 1.0)
    cfg = replace(with_model(space_config("hf_encoder", "tiny"), str(folder)), max_skip=0, head_fractions=fractions,
                  width_fractions=fractions, hidden_fractions=(hidden, 1.0) if hidden else (1.0,))
    result = {}
    for ordered in (False, True):
        torch.manual_seed(0)
        net = build_supernet("hf_encoder", cfg)
        if ordered:
            net.before_training(list(x[:calib].split(100)))
        net.eval()
        with torch.no_grad():
            for name, arch in (("largest", net.space.largest()), ("smallest", net.space.smallest())):
                loss = F.cross_entropy(net(x[train:], arch), y[train:]).item()
                result[f"{name}_{'ordered' if ordered else 'unordered'}"] = loss
    return result
