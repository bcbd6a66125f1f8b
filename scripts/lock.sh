#!/usr/bin/env bash
# Writes the lock files from pyproject.toml: every dependency pinned, with the hashes of
# every distribution of it, so an install takes exactly what was reviewed.
#
#   requirements.lock      what `hanko` needs to run (a production host)
#   requirements-dev.lock  that, and the dev and bench extras (scripts/dev.sh, CI)
#
# Run it after changing dependencies in pyproject.toml; tests/test_dependencies.py fails
# while the lock files were written from other dependencies than pyproject's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TOOL=.venv/tools/piptools
if [ ! -x "$TOOL/bin/pip-compile" ]; then
    python3 -m venv "$TOOL"
    "$TOOL/bin/pip" install -q "pip-tools==7.7.0"
fi
digest=$(python3 scripts/lock_digest.py)
compile() {  # output, extras...
    local out=$1
    shift
    # Seeded with the current pins: pip-compile keeps them, resolving only what changed.
    [ -f "$out" ] && cp "$out" "$out.tmp"
    "$TOOL/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
        --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
        --no-header "$@" --output-file "$out.tmp" pyproject.toml
    { echo "# Written by scripts/lock.sh from pyproject.toml; do not edit."
      echo "# pyproject dependencies sha256: $digest"
      cat "$out.tmp"; } > "$out"
    rm -f "$out.tmp"
}
compile requirements.lock
compile requirements-dev.lock --extra dev --extra bench
echo "lock.sh: requirements.lock and requirements-dev.lock written" >&2
