#!/usr/bin/env bash
# One GPU check, offline, at most 5 minutes on one GPU: bench/gpu.py with the packages a bare GPU machine may lack.
#
#   bash bench/gpu.sh [bench/gpu.py options]     # writes gpu-bench.json and gpu-bench.md into $OUT or ./gpu-bench
#
# Wheels in .whl/ (TRL, datasets, pydantic, liger-kernel, ... as docs/benchmarks.md lists) are installed into
# /tmp/site first when present, with no index (no network needed).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec timeout 300 "$python" bench/gpu.py --output "${OUT:-gpu-bench}" "$@"
