#!/usr/bin/env bash
# Set up everything (scripts/setup.sh) and run the whole test suite.
# Extra arguments go to pytest; PYBPFOBJ_LONG=1 adds the long runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
