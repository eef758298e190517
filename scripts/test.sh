#!/usr/bin/env bash
# Install, then run the linter and the test suite (slow tests: add -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
ruff check src tests benchmarks examples
python -m pytest "$@"
