"""Latency of LLM subnets as generation: a prompt, then new tokens with the KV cache, and each arch's spread."""
import pytest
import torch
from tests.support.llm import TEXT, model_dir, supernet_over

from search_spaces.llm_lora.testing import train_tokenizer
from supernet.core.errors import SupernetError
from supernet.hardware.rounds import MeasureConfig, measure, measure_subnet

pytestmark = pytest.mark.slow  # every test here takes seconds: make test-fast leaves them out

FAST = dict(threads=1, warmup=1, repeats=3, rounds=2, min_seconds=0.0)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return model_dir(tmp_path_factory.mktemp("lat"), train_tokenizer(TEXT, vocab_size=300))


def test_generation_is_greedy_decoding_with_the_cache_and_is_timed(llama):
    model = supernet_over(llama)
    arch = model.space.median()
    static = model.space.build_static(arch).eval()
    ids = model.space.example_input(arch, 1, torch.Generator().manual_seed(0))[:, :8]
    state, tokens = static.prefill(ids), []
    for _ in range(4):
        tokens.append(state[1])
        state = static.decode(state)
    expected = static.model.generate(ids, max_new_tokens=4, do_sample=False)[:, 8:]
    assert torch.equal(torch.cat(tokens, 1), expected)
    timed = measure_subnet(model.space, arch, MeasureConfig(mode="generate", prefill=20, decode=5, **FAST))
    assert timed["median_ms"] > timed["prefill_ms"] > 0 and timed["decode_ms_per_token"] > 0
    assert timed["rounds"] == 2 and timed["spread"] >= 0


def test_measured_latency_reports_each_archs_spread(llama):
    from supernet.hardware.subnet_latency import MeasuredLatency
    model = supernet_over(llama)
    inner = lambda arch: {"loss": 1.0}  # noqa: E731
    inner.space = model.space
    evaluator = MeasuredLatency(inner, "cpu", threads=1, mode="generate", prefill=8, decode=3)
    row = evaluator(model.space.smallest())
    assert {"loss", "latency", "latency_spread", "prefill_ms", "decode_ms_per_token"} <= set(row)


def test_generate_mode_needs_a_generating_subnet():
    with pytest.raises(SupernetError, match="generate"):
        measure(torch.nn.Linear(4, 2), (4,), MeasureConfig(mode="generate", **FAST))
    with pytest.raises(SupernetError, match="generate"):
        MeasureConfig(mode="generate", target="onnxruntime-cpu").check()
