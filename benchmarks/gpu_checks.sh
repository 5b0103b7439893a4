#!/usr/bin/env bash
# The GPU figures of issue 23, in one go on a CUDA machine (one GPU; each step writes JSON under
# benchmarks/results/ and prints a summary). Sized for a short lease: shorten with STEPS / TEST.
#   bash benchmarks/gpu_checks.sh                 # train (with the loader alone), ofa, latency
#   bash benchmarks/gpu_checks.sh loader latency  # some: loader | train | ofa | latency
# Needs: torch with CUDA; for ort-cuda, onnxruntime-gpu in place of onnxruntime; for the OFA
# comparison, the `ofa` package (pip install --no-deps ofa, or a wheel carried along in .whl/).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-docs/measurements}
GPU=${GPU:-h200}
STEPS=${STEPS:-10}
TEST=${TEST:-40}
want() { [[ " ${ARGS} " == *" $1 "* ]]; }
ARGS="$*"
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: no CUDA GPU visible')"
if [ -d .whl ] && ! $PY -c "import ofa" 2>/dev/null; then $PY -m pip install -q --no-deps --no-index .whl/ofa-*.whl || true; fi
if want loader; then   # the loader alone, JPEG folder vs packed, 224 px (also part of `train`)
  $PY benchmarks/bench_train.py --devices cuda --loader-only --out "$OUT/bench_train_loader_cuda_${GPU}.json"
fi
if [ -z "$ARGS" ] || want train; then   # bare step vs real loop (JPEG folder and packed, fp32 / bf16) + loader
  $PY benchmarks/bench_train.py --devices cuda --steps "$STEPS" --warmup 3 --out "$OUT/bench_train_cuda_${GPU}.json"
fi
if [ -z "$ARGS" ] || want ofa; then      # supernet train vs OFA's OFAMobileNetV3, 224 px, batch 128
  $PY benchmarks/bench_vs_ofa.py --device cuda --size 224 --batch 128 --steps $((STEPS + 10)) --warmup 5 \
    --out "$OUT/bench_vs_ofa_${GPU}.json"
fi
if [ -z "$ARGS" ] || want latency; then  # cuda, cuda-graph, ort-cuda at batch 1 and 64, >= 30 held-out archs
  $PY benchmarks/bench_latency.py --device cuda --test "$TEST" --fit 30 --unit-rounds 2 --rounds 2 --repeats 10 \
    --out "$OUT/bench_latency_gpu_${GPU}.json"
fi
