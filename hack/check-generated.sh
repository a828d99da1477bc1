#!/usr/bin/env bash
# Fails when `make manifests generate` would change files, so that the CRD,
# the RBAC role, the deepcopy code and the API reference (docs/api) never
# drift from the Go sources.
set -euo pipefail
cd "$(dirname "$0")/.."
state() { git diff -- api config charts docs/api; git ls-files --others --exclude-standard -- api config charts docs/api; }
before=$(state | sha256sum)
make -s manifests generate
if [[ "$(state | sha256sum)" != "$before" ]]; then
  echo "generated files are stale; run 'make manifests generate' and commit:" >&2
  git status --short -- api config charts docs/api >&2
  exit 1
fi
