#!/usr/bin/env bash
# Runs every fuzz target in the module for a short time (default 5s each):
# enough to catch a regression against the seed corpora and a little more.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-5s}

# fuzz PKG TARGET: one run. Before Go 1.27, the fuzzing coordinator may end
# a clean run with "context deadline exceeded" just as -fuzztime runs out
# (a race between its contexts, golang/go#75804); such a run, which wrote
# no failing input, is tried once more. A real finding is never retried.
fuzz() {
  local out
  if out=$(go test "$1" -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" 2>&1); then
    echo "$out"
    return 0
  fi
  echo "$out"
  if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written to' <<<"$out"; then
    echo "fuzz $1 $2: the coordinator race of golang/go#75804, no failing input; once more"
    go test "$1" -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime"
    return
  fi
  return 1
}

while read -r pkg dir; do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    echo "fuzz $pkg $target ($fuzztime)"
    fuzz "$pkg" "$target" </dev/null # go test must not read the package list
  done
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)
