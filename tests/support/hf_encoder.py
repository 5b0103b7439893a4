"""Model folders for the hf_encoder tests: small random classifiers saved with save_pretrained (no hub)."""
from pathlib import Path

from search_spaces.hf_encoder import testing

TEXTS = ["the cat sat on the mat", "a dog ran in the park", "birds fly over the sea", "fish swim in a lake",
         "the sun is hot today", "rain falls on the roof"] * 4
KINDS = ("bert", "roberta", "vit", "deit")


def save_kind(folder: Path, kind: str, shard: str | None = None, **config) -> Path:
    """A random ``kind`` classifier saved into ``folder`` (sharded at ``shard``) with its tokenizer / processor."""
    if kind in testing.TEXT:
        tok = testing.train_tokenizer(TEXTS, 80)
        model = testing.build_text_model(len(tok), kind, **config)
        return testing.save_model(folder, model, tok, shard)
    model = testing.build_image_model(kind, **config)
    return testing.save_model(folder, model, testing.image_processor(16, model.config.num_channels), shard)
