#!/usr/bin/env bash
# Install, then fit DDVI and AEVB with the pinwheel prior on real MNIST (a few minutes on 2 CPU
# cores) and write run folders with metrics.json, history.csv and figures under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
EPOCHS=${EPOCHS:-5}
ddvi fit --method ddvi --prior pinwheel --epochs "$EPOCHS" --out runs/demo-ddvi-pinwheel "$@"
ddvi fit --method aevb --prior pinwheel --epochs "$EPOCHS" --out runs/demo-aevb-pinwheel "$@"
echo "Open runs/demo-*/latents.png and runs/demo-*/metrics.json"
