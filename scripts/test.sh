#!/usr/bin/env bash
# Set up .venv if needed, then run the fast test suite; `--slow` runs the slow statistical checks;
# `--recovery` runs the hour-long recovery of the published pattern (300 studies, one thread),
# of buzz and complement, and the primary family under a global null.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup-venv.sh"
cd "$root"
if [ "${1:-}" = "--slow" ]; then
    shift
    exec "$root/.venv/bin/python" -m pytest -m slow "$@"
fi
if [ "${1:-}" = "--recovery" ]; then
    shift
    exec "$root/.venv/bin/python" -m pytest -m recovery "$@"
fi
exec "$root/.venv/bin/python" -m pytest "$@"
