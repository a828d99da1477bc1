#!/usr/bin/env bash
# Fails when `make manifests generate` would change files, so that the CRD,
# the RBAC role and the deepcopy code never drift from the Go sources.
set -euo pipefail
cd "$(dirname "$0")/.."
state() { git diff -- api config charts; git ls-files --others --exclude-standard -- api config charts; }
before=$(state | sha256sum)
make -s manifests generate
if [[ "$(state | sha256sum)" != "$before" ]]; then
  echo "generated files are stale; run 'make manifests generate' and commit:" >&2
  git status --short -- api config charts >&2
  exit 1
fi
