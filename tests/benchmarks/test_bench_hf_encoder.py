"""bench_hf_encoder's pieces: the first-keyword task (the order decides, ceiling below 100 %), the glyph-pair
images, the paired gap and its summary over seeds."""
import numpy as np
import pytest
import torch

from benchmarks import hf_encoder_text as text
from benchmarks.bench_hf_encoder import paired_gap, summary


def test_keyword_order_task_labels_the_first_keyword():
    sentences, labels = text.keyword_order_task(300, words=30, keywords=6, shown=3, length=12, noise=0.0, seed=3)
    assert len(sentences) == 300 and labels.shape == (300,)
    for ids, label in zip(sentences, labels):
        keys = [w for w in ids if w < 6]
        assert 6 <= len(ids) <= 12 and len(keys) == len(set(keys)) == 3 and keys[0] == label
    _, last = text.keyword_order_task(300, words=30, keywords=6, shown=3, length=12, noise=0.0, last=True, seed=3)
    assert all([w for w in ids if w < 6][-1] == y for ids, y in zip(sentences, last))  # same sentences, last one
    again = text.keyword_order_task(300, words=30, keywords=6, shown=3, length=12, noise=0.0, seed=3)
    assert again[0] == sentences and np.array_equal(again[1], labels)  # seeded


def test_redrawn_labels_set_the_ceiling_and_words_alone_do_not_tell_the_class():
    sentences, labels = text.keyword_order_task(6000, seed=1, **text.TASK)
    clean = np.array([[w for w in ids if w < text.TASK["keywords"]][0] for ids in sentences])
    assert np.mean(clean == labels) == pytest.approx(text.ceiling(text.TASK["keywords"], text.TASK["noise"]), abs=0.01)
    assert 0.85 < text.ceiling(16, 0.1) < 1
    # every keyword of a sentence is equally likely to be the first: a bag of words picks 1 of 4
    shown = [[w for w in ids if w < text.TASK["keywords"]] for ids in sentences]
    assert np.mean([s[0] == min(s) for s in shown]) == pytest.approx(1 / text.TASK["shown"], abs=0.03)


def test_sentences_as_words_tokenise_one_token_per_word_with_fixed_ids(tmp_path):
    from transformers import AutoTokenizer
    sentences, labels = text.keyword_order_task(50, seed=0)
    words = text.as_text(sentences)
    tok = text.word_tokenizer(64)
    assert tok.tokenize(words[0]) == words[0].split()
    ids = tok(words[0])["input_ids"]
    assert ids == [tok.cls_token_id, *[5 + w for w in sentences[0]], tok.sep_token_id] and tok.pad_token_id == 0
    tok.save_pretrained(tmp_path / "tok")
    assert AutoTokenizer.from_pretrained(tmp_path / "tok")(words[1])["input_ids"] == tok(words[1])["input_ids"]
    path = text.write_csv(tmp_path / "t.csv", words, labels)
    assert path.read_text().splitlines()[1] == f"{words[0]},{labels[0]}"


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


def test_glyphs_sit_on_the_patch_grid_one_patch_each():
    from benchmarks import hf_encoder_images as images
    assert images.GLYPH == images.STEP and images.SIDE % images.STEP == 0
    noise, images.NOISE = images.NOISE, 0.0
    try:
        rng, glyphs = np.random.default_rng(1), images.alphabet()
        single = images.render(np.arange(images.GLYPHS * 10)[:, None] % images.GLYPHS, rng, glyphs)[:, 0] * 0.5 + 0.5
        pair = images.render(np.array([[1, 2]] * 40), rng, glyphs)[:, 0] * 0.5 + 0.5
    finally:
        images.NOISE = noise
    cells = set()
    for img in single:  # every lit pixel of one glyph falls in one STEP x STEP cell
        lit = {(r // images.STEP, c // images.STEP) for r, c in np.argwhere(img > 0)}
        assert len(lit) == 1
        cells |= lit
    assert len(cells) > 8  # and the glyph moves over the grid
    for img in pair:  # two cells: one in the left half, one in the right
        lit = sorted({(c // images.STEP, r // images.STEP) for r, c in np.argwhere(img > 0)})
        assert len(lit) == 2 and lit[0][0] < images.SIDE // images.STEP // 2 <= lit[1][0]
