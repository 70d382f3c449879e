#!/usr/bin/env bash
# The main job: set up .venv if needed, then run the whole study on the built-in calibrated
# survey (the norway2010 preset, seed 2010) and write the report to out/norway2010/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup-venv.sh"
cd "$root"
exec "$root/.venv/bin/buzzpipe" replicate --out out/norway2010 "$@"
