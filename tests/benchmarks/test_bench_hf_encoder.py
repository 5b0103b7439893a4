"""bench_hf_encoder's pieces: the word-order task (bag of words useless, Bayes ceiling below 100 %), the MLM
pretraining, the paired gap and its summary over seeds."""
import numpy as np
import pytest
import torch

from benchmarks import hf_encoder_text as text
from benchmarks.bench_hf_encoder import paired_gap, summary


def test_word_order_task_follows_each_styles_permutation():
    sentences, labels, perms = text.word_order_task(400, words=20, classes=4, length=12, p=0.5, seed=3)
    assert len(sentences) == 400 and labels.shape == (400,) and perms.shape == (4, 20)
    assert all(6 <= len(s) <= 12 and all(0 <= w < 20 for w in s) for s in sentences)
    assert all(sorted(p) == list(range(20)) for p in perms.tolist())  # permutations
    counts = text.pair_counts(sentences, perms)
    # a sentence holds far more pairs of its own style than of another's (p = 0.5 vs chance 1/20)
    own = counts[np.arange(400), labels].mean()
    other = (counts.sum(1) - counts[np.arange(400), labels]).mean() / 3
    assert own > 2.5 and other < 1.0, (own, other)
    again = text.word_order_task(400, words=20, classes=4, length=12, p=0.5, seed=3)
    assert again[0] == sentences and np.array_equal(again[1], labels)  # seeded
    other_draw = text.word_order_task(400, words=20, classes=4, length=12, p=0.5, seed=4)
    assert other_draw[0] != sentences and np.array_equal(other_draw[2], perms)  # same styles, new sentences


def test_word_frequencies_do_not_tell_the_styles_apart():
    """Every style uses every word about equally often: a bag of words is at chance."""
    sentences, labels, _ = text.word_order_task(4000, words=16, classes=4, length=16, p=0.3, seed=0)
    freq = np.zeros((4, 16))
    for s, y in zip(sentences, labels):
        np.add.at(freq[y], s, 1)
    freq /= freq.sum(1, keepdims=True)
    assert np.abs(freq - 1 / 16).max() < 0.01


def test_oracle_accuracy_rises_with_p_and_stays_below_one_at_the_benchmarks_setting():
    low = text.oracle_accuracy(*text.word_order_task(3000, p=0.05, seed=1))
    bench = text.oracle_accuracy(*text.word_order_task(3000, seed=1, **text.TASK))
    assert 1 / 8 < low < bench < 0.95
    assert text.oracle_accuracy(*text.word_order_task(500, p=1.0, seed=1)) > 0.99  # only chance collisions


def test_oracle_splits_ties_evenly():
    perms = np.array([[1, 0], [1, 0]])  # two identical styles: every sentence ties
    assert text.oracle_accuracy([[0, 1], [1, 0]], np.array([0, 1]), perms) == pytest.approx(0.5)


def test_mlm_pretraining_lowers_the_loss_and_transfers_to_a_classifier(tmp_path):
    sentences, labels, _ = text.word_order_task(300, words=12, classes=3, length=8, p=0.6, seed=0)
    from search_spaces.hf_encoder import testing
    words = text.as_text(sentences)
    tok = testing.train_tokenizer(words, 60)
    assert tok.tokenize(words[0]) == words[0].split()  # one token per word
    _, first = text.mlm_pretrain(tok, words, 16, 1, 2, 32, 10, steps=2, seed=0)
    mlm, last = text.mlm_pretrain(tok, words, 16, 1, 2, 32, 10, steps=60, lr=3e-3, seed=0)
    assert last < first - 0.3, (first, last)
    model = text.classifier_from_mlm(mlm, tmp_path / "m", tok, 3)
    assert model.config.num_labels == 3 and model.config.architectures == ["BertForSequenceClassification"]
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, mlm.bert.embeddings.word_embeddings.weight)


def test_paired_gap_and_its_standard_error():
    y = torch.tensor([0, 1, 1, 0, 1, 0, 1, 1])
    a = torch.tensor([0, 1, 1, 0, 0, 0, 1, 0])  # 6 / 8 right
    b = torch.tensor([0, 1, 0, 0, 1, 1, 1, 0])  # 5 / 8 right
    gap, se = paired_gap(a, b, y)
    d = np.array([0, 0, 1, 0, -1, 1, 0, 0], dtype=float)
    assert gap == pytest.approx(12.5) and se == pytest.approx(100 * d.std(ddof=1) / np.sqrt(8))
    assert paired_gap(a, a, y) == (0.0, 0.0)


def test_summary_groups_sizes_over_seeds():
    rows = [{"target_fraction": f, "gap_pt": g, "params_fraction": f, "subnet_accuracy": 0.8, "twin_accuracy": t}
            for f, g, t in ((0.5, -1.0, 0.81), (0.3, 0.2, 0.7), (0.5, 0.4, 0.79))]
    out = summary(rows)
    assert [r["target_fraction"] for r in out] == [0.5, 0.3]
    assert out[0]["seeds"] == 2 and out[0]["gap_pt_mean"] == pytest.approx(-0.3)
    assert (out[0]["gap_pt_min"], out[0]["gap_pt_max"]) == (-1.0, 0.4)
    assert out[0]["twin_accuracy_mean"] == pytest.approx(0.8)


def test_glyph_pair_images_and_their_labels():
    from benchmarks import hf_encoder_images as images
    t = images.table()
    assert all(sorted(row) == list(range(images.GLYPHS)) for row in t.tolist())  # each glyph alone: every class
    assert any(t[a, b] != t[b, a] for a in range(images.GLYPHS) for b in range(a))  # order matters
    x, y = images.image_set("target", 200, seed=0)
    assert x.shape == (200, 1, images.SIDE, images.SIDE) and x.dtype == np.float32 and y.shape == (200,)
    assert set(y.tolist()) <= set(range(images.GLYPHS)) and len(set(y.tolist())) > 4
    xs, ys = images.image_set("source", 200, seed=0)
    assert xs.shape == x.shape and not np.array_equal(xs, x)
    # a noiseless render holds the glyph exactly where the source set put it
    rng = np.random.default_rng(0)
    glyphs = images.alphabet()
    noise, images.NOISE = images.NOISE, 0.0
    try:
        clean = images.render(np.array([[3]]), rng, glyphs)[0, 0] * 0.5 + 0.5
    finally:
        images.NOISE = noise
    assert clean.sum() == glyphs[3].sum()
    r, c = np.argwhere(clean > 0).min(0)
    window = clean[r:r + images.GLYPH, c:c + images.GLYPH]
    assert window.sum() == glyphs[3].sum()
