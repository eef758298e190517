#!/usr/bin/env bash
# Create .venv (if needed) and install ddvi into it: the CPU torch 2.13.0 first, then the package.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[test,genomics,compare,distributed,maps,singlecell]"
python -c "import ddvi, torch; print(f'ddvi {ddvi.__version__} with torch {torch.__version__}')"
