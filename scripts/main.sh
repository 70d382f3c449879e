#!/usr/bin/env bash
# The main job: set up .venv if needed, then run the study on the built-in survey.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup-venv.sh"
cd "$root"
# Until the calibrated synthetic survey lands, the main job describes the small placeholder
# survey shipped with the package (src/buzzpipe/data/placeholder_survey.csv).
exec "$root/.venv/bin/buzzpipe" describe --builtin "$@"
