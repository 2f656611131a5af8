#!/usr/bin/env bash
# The GPU checks in one go, on a CUDA box whose python3 already has torch (the device machines'
# image). Wheels of the project's other needs, for that python, may lie in .whl/ (no network there).
# Writes its logs under $OUT (default ./device-out).
set -u
OUT=${OUT:-device-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, onnxruntime, duckdb, lmdb, soundfile, soxr, librosa; print('torch', torch.__version__, 'onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers())" || exit 1
nvidia-smi dmon -s u -d 1 > "$OUT/dmon.txt" 2>&1 &
dmon=$!
timeout "${BENCH_TIMEOUT:-360}" python3 bench/bench_gpu.py ${BENCH_PARTS:-} 2>&1 | tee "$OUT/bench_gpu.txt"
kill $dmon 2>/dev/null
if [ -n "${TESTS_TIMEOUT:-}" ]; then
    # lightgbm is not on the device image: its cases are left out
    timeout "$TESTS_TIMEOUT" python3 -m pytest -q -p no:cacheprovider -n 8 -k "not lgbm" \
        tests/test_models.py tests/test_features.py tests/test_aisfx.py 2>&1 | tee "$OUT/tests.txt" | tail -25
fi
