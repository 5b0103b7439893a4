"""``supernet train --init RUN``: a new training run that starts from the weights of a trained (or imported)
supernet of the same space, on other data.

The new run is built from the init checkpoint's own space config (its variant, and options such as
OFA's kernel transformation) fitted to the new data (:meth:`SpaceEntry.fitted`: channels, classes),
then, before step 0, every tensor of the init checkpoint is loaded, batch-norm statistics included.
When the data's number of classes differs from the init's, the classifier is replaced: the tensors
whose shapes differ only on their first axis, from the init's class count to the data's, keep the
new run's fresh initialisation (from ``--seed``). Any other difference (another space, another
``--variant``, a missing or extra tensor, a tensor of another shape) is one line naming it, before
anything is written. ``config.json`` records under ``init`` the checkpoint, its step and the SHA-256
of its weights file; a resumed run loads its own checkpoint, not the init's. The space's
``before_training`` hook is skipped: the loaded weights already carry what it computed.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from ..core.errors import SupernetError
from ..core.registry import config_from_dict
from ..io.checkpoint import CONFIG, WEIGHTS, resolve_checkpoint, run_of
from ..io.files import read_json


@dataclass(frozen=True)
class InitSource:
    """The checkpoint ``--init`` names: its folder and saved config (``config.json``)."""

    folder: Path
    meta: dict

    @classmethod
    def read(cls, path: str, space: str, variant: str | None) -> "InitSource":
        """The checkpoint of ``path`` (a run folder: its latest), refused unless it is a supernet of ``space``
        (and of ``variant`` when one is given)."""
        if not Path(path).exists():
            raise SupernetError(f"--init {str(path)!r} does not exist; give a run or checkpoint folder of the same space")
        folder = resolve_checkpoint(path).resolve()
        meta = read_json(folder / CONFIG, "init checkpoint config")
        if "space" not in meta or "space_config" not in meta:
            raise SupernetError(f"--init {path!r} is not a supernet checkpoint (its {CONFIG} names no space)")
        if meta["space"] != space:
            raise SupernetError(f"--init {path!r} is a supernet of space {meta['space']!r}, this run's --space is "
                                f"{space!r}: add --space {meta['space']} (--init continues a supernet of the same space)")
        if variant is not None and variant != meta.get("variant"):
            raise SupernetError(f"--init {path!r} is variant {meta.get('variant')!r} of space {space!r}, not --variant "
                                f"{variant!r}: drop --variant (the run takes the init's)")
        return cls(folder, meta)

    @property
    def variant(self) -> str | None:
        return self.meta.get("variant")

    def config(self):
        """The init's space config (before fitting to the new data)."""
        return config_from_dict(self.meta["space"], self.meta["space_config"])

    def plan(self, model: torch.nn.Module, num_classes: int | None) -> dict:
        """What loading will do (checked now, nothing loaded): the record ``config.json`` keeps under ``init``."""
        state, digest = read_weights(self.folder)
        replaced, classes = _replaced(state, model.state_dict(), num_classes, self.folder)
        return {"checkpoint": str(self.folder), "run": str(run_of(self.folder)), "step": self.meta.get("step"),
                "space": self.meta["space"], "variant": self.variant, "weights_sha256": digest,
                "replaced": replaced, "classes": classes}


def read_weights(folder: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The checkpoint's state dict (safetensors, no code executed) and the SHA-256 of its file."""
    path = Path(folder) / WEIGHTS
    try:
        data = path.read_bytes()
        return load_safetensors(data), hashlib.sha256(data).hexdigest()
    except FileNotFoundError:
        raise SupernetError(f"--init: weights file {str(path)!r} does not exist") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise SupernetError(f"--init: weights file {str(path)!r} is corrupted or not safetensors ({exc})") from None


def _replaced(state: dict, expected: dict, num_classes: int | None, folder: Path) -> tuple[list[str], list | None]:
    """``(names, [init classes, data classes])`` of the classifier tensors to replace (``([], None)``: none).

    A tensor is the classifier's when its shape differs only on the first axis, from the same init
    size ``c0`` to the data's ``num_classes`` as every other replaced tensor (a linear head's weight
    ``(C, F)`` and bias ``(C,)``); any other difference is a SupernetError naming the tensor."""
    where = f"--init {str(folder)!r}"
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        name = (missing or extra)[0]
        raise SupernetError(f"{where} does not fit this run's supernet: tensor {name!r} is "
                            f"{'missing from the init' if missing else 'not in this supernet'} "
                            f"({len(missing)} missing, {len(extra)} extra); it is another space or variant")
    names, sizes = [], set()
    for name, tensor in expected.items():
        old, new = tuple(state[name].shape), tuple(tensor.shape)
        if old == new:
            continue
        if not (len(old) == len(new) >= 1 and old[1:] == new[1:] and new[0] == num_classes):
            raise SupernetError(f"{where} does not fit this run's supernet: tensor {name!r} has shape {old} in the "
                                f"init, this run needs {new} (other input channels or another variant?); only the "
                                "classifier may change, with the number of classes")
        names.append(name)
        sizes.add(old[0])
    if len(sizes) > 1:
        raise SupernetError(f"{where}: tensors {names} differ in shape in more than the number of classes")
    return sorted(names), ([sizes.pop(), num_classes] if names else None)


def load_init(model: torch.nn.Module, record: dict) -> None:
    """Load the init checkpoint of ``record`` (:meth:`InitSource.plan`) into ``model``: every tensor but the
    replaced classifier's, which keeps the model's fresh initialisation. The file must still hash as planned."""
    state, digest = read_weights(Path(record["checkpoint"]))
    if digest != record["weights_sha256"]:
        raise SupernetError(f"--init {record['checkpoint']!r} changed since the run started (its weights hash "
                            f"{digest[:12]}, the run recorded {record['weights_sha256'][:12]})")
    own = model.state_dict()
    model.load_state_dict({name: own[name] if name in record["replaced"] else tensor for name, tensor in state.items()})


def init_message(record: dict) -> str:
    """One line for the log: where the weights came from and whether the classifier was replaced."""
    head = "classifier kept"
    if record["replaced"]:
        old, new = record["classes"]
        head = f"classifier replaced ({old} -> {new} classes; {', '.join(record['replaced'])} initialised fresh)"
    return (f"init: weights of {record['checkpoint']} (step {record['step']}, sha256 "
            f"{record['weights_sha256'][:12]}); {head}")
