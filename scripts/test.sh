#!/usr/bin/env bash
# Set up .venv if needed, then run the fast test suite; `--slow` runs the slow statistical checks.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup-venv.sh"
cd "$root"
if [ "${1:-}" = "--slow" ]; then
    shift
    exec "$root/.venv/bin/python" -m pytest -m slow "$@"
fi
exec "$root/.venv/bin/python" -m pytest "$@"
