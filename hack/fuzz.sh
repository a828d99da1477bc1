#!/usr/bin/env bash
# Runs every fuzz target in the module for a short time (default 5s each):
# enough to catch a regression against the seed corpora and a little more.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-5s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    echo "fuzz $pkg $target ($fuzztime)"
    go test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime"
  done
done
