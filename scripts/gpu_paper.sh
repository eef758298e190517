#!/usr/bin/env bash
# Paper scale on a GPU, as one prepared script (issue 13). Two steps:
#
#   ./scripts/gpu_paper.sh prepare   # here, with the data cached: MNIST as IDX .gz in .gpu-data/
#   ./scripts/gpu_paper.sh run       # on the GPU machine (a copy of this tree with .gpu-data/)
#
# `run` installs ddvi without dependencies into the machine's own Python (its CUDA torch stays),
# runs the device tests (they exercise CUDA there and are skipped on a CPU), then Table 1 at the
# `paper` scale (all 60 000 images, 200 epochs, 10 000 test images, MMD on 10 000) for the
# pinwheel prior and seed 0, rows $ROWS, $WORKERS fits at a time sharing the GPU, stopped after
# $BUDGET seconds. Finished fits are cached under $OUT/table1/fits, so a second call continues
# where the first stopped; the table, its JSON and figure are written when every fit is done.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=.gpu-data
case "${1:-}" in
prepare)
  PYTHON=${PYTHON:-.venv/bin/python}
  "$PYTHON" - "$DATA/mnist" <<'EOF'
import gzip, struct, sys
from pathlib import Path

from ddvi.data import load_mnist

folder = Path(sys.argv[1])
folder.mkdir(parents=True, exist_ok=True)
(xtr, ytr), (xte, yte) = load_mnist()
for name, arr in (("train-images-idx3-ubyte", xtr), ("train-labels-idx1-ubyte", ytr),
                  ("t10k-images-idx3-ubyte", xte), ("t10k-labels-idx1-ubyte", yte)):
    arr = arr.astype("uint8")
    head = struct.pack(">I", 0x800 + arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    with gzip.open(folder / f"{name}.gz", "wb") as f:
        f.write(head + arr.tobytes())
print(f"wrote MNIST as IDX .gz to {folder}")
EOF
  grep -qxF "$DATA/" .git/info/exclude 2>/dev/null || echo "$DATA/" >> .git/info/exclude
  ;;
run)
  OUT=${OUT:-runs/gpu}
  ROWS=${ROWS:-aevb,aevb-iaf,ddvi}
  WORKERS=${WORKERS:-3}
  BUDGET=${BUDGET:-500}
  python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2 || \
    python3 -m pip install -q --no-deps -e .
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  mkdir -p "$OUT"
  python3 -m pytest -q -p no:cacheprovider tests/test_devices.py 2>&1 | tee "$OUT/device-tests.log" || true
  export DDVI_DATA=$PWD/$DATA DDVI_BENCH_THREADS=2
  start=$(date +%s)
  timeout "$BUDGET" python3 -m ddvi.cli bench table1 --scale paper --device cuda --priors pinwheel \
    --seeds 0 --rows "$ROWS" --workers "$WORKERS" --out "$OUT/table1" -q || \
    echo "stopped after $(( $(date +%s) - start )) s; finished fits are in $OUT/table1/fits"
  ls "$OUT/table1/fits"/*/result.json 2>/dev/null | wc -l | xargs echo "finished fits:"
  ;;
*)
  echo "usage: $0 prepare|run" >&2
  exit 2
  ;;
esac
