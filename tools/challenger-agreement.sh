#!/usr/bin/env bash
# Live agreement with challengeR 1.0.5 (not run by CI: CI has no R and cannot reach
# challengeR's source). Runs challengeR on the recorded inputs in
# tests/report/challenger_golden/, checks its outputs still equal the golden files and that
# our engine agrees with them (tests/report/test_ranking_agreement.py, marker challenger).
#
# Usage: tools/challenger-agreement.sh [--regenerate] PATH_TO_CHALLENGER_SRC
#   PATH_TO_CHALLENGER_SRC  a checkout of github.com/wiesenfa/challengeR (commit
#                           beb3b6752ce023e1c8e9f1982a91258c5855f3d3, version 1.0.5)
#   --regenerate            first rewrite the golden files from challengeR
#                           (tools/challenger_golden.py), then check
# Needs Rscript and challengeR's imports (docs/reports.md). Fails, never skips, without them.
set -euo pipefail
cd "$(dirname "$0")/.."
regenerate=0
if [ "${1:-}" = --regenerate ]; then regenerate=1; shift; fi
if [ $# -ne 1 ]; then
    echo "error: usage: tools/challenger-agreement.sh [--regenerate] PATH_TO_CHALLENGER_SRC" >&2
    exit 2
fi
src="$(cd "$1" && pwd)"
if [ "$regenerate" = 1 ]; then
    python tools/challenger_golden.py "$src"
fi
E2NET_CHALLENGER_SRC="$src" exec python -m pytest -m challenger -q tests/report/test_ranking_agreement.py
