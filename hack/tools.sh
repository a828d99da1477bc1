#!/usr/bin/env bash
# Builds the binaries the tests and the demo need from pinned versions on the
# Go module proxy (no download site is reachable), caching each one under
# $CROWDPACK_CACHE/<tool>-<version>/ and linking it into bin/. A second run
# finds the cache and does no work.
#
# k8s-oldest links the oldest supported Kubernetes minor's kube-apiserver
# (with the same etcd) into bin/k8s-oldest/, where make test-oldest runs the
# admission tests, one full upload and the release and chart checks against it.
#
# node links what make e2e-node runs a real single-node cluster with into
# bin/node/: etcd and the NODE_KUBERNETES_VERSION control plane, kubelet and
# kube-proxy (built like kube-apiserver, with the providerless tag that drops
# the cloud SDKs) and a static pause image for containerd's sandboxes.
#
#   hack/tools.sh [controller-gen|crd-ref-docs|etcd|kube-apiserver|k8s-oldest|node|minio|helm|all]...
#
# goroot prints the GOROOT whose compiler asks for huge pages (see
# huge_page_goroot), for make demo's own build.
set -euo pipefail

ETCD_VERSION=v3.6.16
KUBERNETES_VERSION=v1.37.2
# The oldest minor the CRD works on: fieldPath in x-kubernetes-validations
# came in 1.28. Keep in step with README.md, docs/install.md and the chart's
# kubeVersion (test/release checks them).
OLDEST_KUBERNETES_VERSION=v1.28.15
# The real node of make e2e-node runs the oldest supported minor throughout:
# kubelet 1.28 builds in a fraction of 1.37's time, a kubelet must not be newer
# than its API server, and it shares k8s-oldest's cached kube-apiserver.
NODE_KUBERNETES_VERSION=$OLDEST_KUBERNETES_VERSION
# The pause image is built here from hack/node/pause; bump on a change there.
PAUSE_VERSION=3.9-crowdpack.1
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
CONTROLLER_GEN_VERSION=v0.23.0
HELM_VERSION=v3.22.0
# The API reference docs/api/v1alpha1.md is generated from the Go types by it
# (make api-docs, config in hack/api-docs/).
CRD_REF_DOCS_VERSION=v0.3.0

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/bin
# Absolute, for the links into bin/ that point into it.
CACHE=$(realpath -m "${CROWDPACK_CACHE:-$HOME/.cache/crowdpack}")
# Build with the Go on this machine; a module's toolchain line must not make
# the go command fetch another one.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
# sort, join and comm below agree on one byte order.
export LC_ALL=C

# Test and demo binaries need no debugger's tables: the linker has less to
# write without them (panics still print their stacks).
STRIP="-s -w"

log() { printf '[tools] %s\n' "$*" >&2; }

# ensure NAME VERSION BUILDER [LINKDIR]: link $CACHE/NAME-VERSION/NAME into
# LINKDIR (bin/ by default), building it first when missing or when
# BUILDER_ok (if defined) finds the cached one unfit. A lock per tool and
# version lets builds run side by side (and two clones share the cache): a
# second ensure of the same tool waits for the first and finds it cached.
ensure() {
  local name=$1 version=$2 builder=$3 linkdir=${4:-$BIN}
  local dir=$CACHE/$name-$version lock
  mkdir -p "$linkdir" "$dir"
  exec {lock}>"$dir/.lock"
  flock "$lock"
  if [[ -e $dir/$name ]] && { ! declare -F "${builder}_ok" >/dev/null || "${builder}_ok" "$dir/$name" "$version"; }; then
    log "$name $version: cached in $dir, nothing to build"
  else
    log "$name $version: building (not in $dir yet, or unfit)..."
    local start=$SECONDS tmp
    tmp=$(mktemp -d)
    "$builder" "$tmp" "$version"
    mv "$tmp/$name" "$dir/$name.tmp" && mv "$dir/$name.tmp" "$dir/$name"
    rm -rf "$tmp"
    log "$name $version: built in $((SECONDS - start))s"
  fi
  exec {lock}>&-
  ln -sfn "$dir/$name" "$linkdir/$name"
}

# Go's compiler spends a third of its time here faulting in its heap 4 KiB at
# a time: transparent huge pages set to "madvise" (Debian's default) go only
# to memory that asks for them, and Go's heap does not. So the tools are
# compiled by this Go's own compile and link, built once per Go version with
# one line added to their runtime that asks where the heap is mapped. Same
# version, same output (Go's build cache is shared with a plain go build),
# faster. Under "always" or "never" the stock ones run.

# huge_page_goroot: the GOROOT that holds them, building it first if need be;
# the machine's own when they would not help or cannot be built.
huge_page_goroot() {
  local version goroot
  version=$(go env GOVERSION)
  goroot=$CACHE/goroot-$version/goroot
  if [[ $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null) == *"[madvise]"* ]]; then
    [[ -e $goroot ]] || ensure goroot "$version" build_huge_page_goroot || true
    if [[ -e $goroot/src/runtime ]]; then
      echo "$goroot"
      return
    fi
    log "no GOROOT whose compiler asks for huge pages in $goroot: compiling with the stock one"
  fi
  go env GOROOT
}

# build_huge_page_goroot DIR: DIR/goroot, the machine's GOROOT as symlinks but
# for compile and link. go build runs them as its own tools: no -toolexec
# wrapper to start for every compile (etcd's build: 6.5 % less CPU).
build_huge_page_goroot() {
  local goroot=$1/goroot stock tools src overlay rel e
  stock=$(go env GOROOT)
  tools=$(go env GOTOOLDIR)
  tools=${tools#"$stock"/}
  src=$stock/src/runtime/mem_linux.go
  overlay=$1/overlay.json
  sed '/^func sysMapOS/,/^}/ s/^\tsetVMAName(p, n, vmaName)$/&\n\tsysHugePageOS(v, n)/' "$src" >"$1/mem_linux.go"
  grep -q '^	sysHugePageOS(v, n)$' "$1/mem_linux.go" || { log "runtime/mem_linux.go has changed: no sysMapOS to patch"; return 1; }
  printf '{"Replace":{"%s":"%s"}}\n' "$src" "$1/mem_linux.go" >"$overlay"
  # Nothing here is shared with another build (every package sits on the
  # patched runtime), so no debugger's tables either: 10 % less to compile.
  mkdir -p "$goroot/$tools"
  CGO_ENABLED=0 go build -trimpath -overlay "$overlay" -gcflags=all=-dwarf=false -ldflags "$STRIP" \
    -o "$goroot/$tools/" cmd/compile cmd/link
  # Real directories from the tools' up to the root, the rest linked.
  rel=/$tools
  while :; do
    for e in "$stock$rel"/*; do [[ -e $goroot$rel/${e##*/} ]] || ln -s "$e" "$goroot$rel/"; done
    [[ -n $rel ]] || break
    rel=${rel%/*}
  done
}

# compile COMMAND...: run a go build that compiles a tool. One build keeps 2
# cores busy but for its links and the tail of its build; two at the same
# priority compile the same std and shared packages twice, each before the
# other has cached them. So the first build compiles at full priority and a
# second beside it at the lowest (nice 19): it takes only the CPU the first
# leaves idle, and finds in Go's build cache what the first compiled before it
# got there. Others wait their turn. Fetching modules (go get, go install -n)
# goes on side by side.
compile() {
  set -- env GOROOT="$(huge_page_goroot)" "$@"
  (
    exec {first}>"$CACHE/.compile.lock" {second}>"$CACHE/.compile-idle.lock"
    until flock -n "$first"; do
      if flock -n "$second"; then
        set -- nice -n 19 "$@"
        break
      fi
      sleep 1
    done
    exec "$@"
  )
}

# throwaway_module DIR: a go.mod to build a pinned main package from.
throwaway_module() {
  (cd "$1" && go mod init crowdpack.local/build >/dev/null 2>&1)
}

# kubernetes_gomod VERSION: the path of k8s.io/kubernetes's go.mod at VERSION
# in the module cache, downloaded if need be.
kubernetes_gomod() {
  local dir
  dir=$(mktemp -d)
  throwaway_module "$dir"
  (cd "$dir" && go mod download -json "k8s.io/kubernetes@$1") | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p'
  rm -rf "$dir"
}

build_controller_gen() {
  GOBIN=$1 go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$2"
}

build_crd_ref_docs() {
  GOBIN=$1 CGO_ENABLED=0 go install "github.com/elastic/crd-ref-docs@$2"
}

build_helm() {
  GOBIN=$1 CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$2"
}

# go install -n fetches what the build needs and compiles nothing (a failure
# shows in the build that follows).
build_minio() {
  local flags=(-trimpath -ldflags "$STRIP") pkg=github.com/minio/minio@$2
  CGO_ENABLED=0 go install -n "${flags[@]}" "$pkg" >/dev/null 2>&1 || true
  compile env GOBIN="$1" CGO_ENABLED=0 go install "${flags[@]}" "$pkg"
}

# etcd's server module has relative replaces, so go install cannot build it
# at a version; a throwaway module that requires it can.
build_etcd() {
  local dir=$1 version=$2
  throwaway_module "$dir"
  (cd "$dir" &&
    go get "go.etcd.io/etcd/server/v3@$version" &&
    compile env CGO_ENABLED=0 go build -trimpath -ldflags "$STRIP" -o etcd go.etcd.io/etcd/server/v3)
}

# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
# with local paths; replace each with its published release (v1.X.Y's staging
# modules are v0.X.Y) instead. The version is stamped as Kubernetes' own
# build does, so that /version answers it (helm checks a chart's kubeVersion
# against it).
build_kube_apiserver() { build_kubernetes_command kube-apiserver "$@"; }
build_kube_controller_manager() { build_kubernetes_command kube-controller-manager "$@"; }
build_kube_scheduler() { build_kubernetes_command kube-scheduler "$@"; }
build_kubelet() { build_kubernetes_command kubelet "$@"; }
build_kube_proxy() { build_kubernetes_command kube-proxy "$@"; }

# build_kubernetes_command NAME DIR VERSION: k8s.io/kubernetes/cmd/NAME, with
# the providerless tag (no cloud providers: much less to compile, nothing a
# single local node needs).
#
# A VERSION with a "+" suffix (the demo's and the tests' kube-apiserver, see
# kube_apiserver_key) is built against the operator's own versions of the
# modules both compile.
build_kubernetes_command() {
  local name=$1 dir=$2 version=${3%%+*} staging
  local staging_version=v0.${version#v1.} minor=${version#v1.}
  minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  local ldflags="$STRIP -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  throwaway_module "$dir"
  staging=$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$(kubernetes_gomod "$version")")
  (
    cd "$dir"
    for m in $staging; do go mod edit -replace "$m=$m@$staging_version"; done
    go mod edit -require "k8s.io/kubernetes@$version"
    go get "k8s.io/kubernetes/cmd/$name@$version"
    if [[ $3 == *+* ]]; then align_with_operator "$version"; fi
    compile env CGO_ENABLED=0 go build -trimpath -tags providerless -ldflags "$ldflags" -o "$name" "k8s.io/kubernetes/cmd/$name"
  )
}

# The manager and kube-apiserver compile the same client-go, apimachinery and
# API types, and the same std (CGO_ENABLED=0, -trimpath): when kube-apiserver
# is built against the operator's versions of the modules both use, Go's
# build cache that compiled it already holds the manager's costliest
# packages, and make demo on a fresh machine compiles them once, not twice.
# Versions are only raised (a requirement never lowers what Kubernetes asks
# for), and only for modules Kubernetes requires anyway.

# operator_modules: module@version of every module the manager, the sandbox
# and the demo's helper compile packages from.
operator_modules() {
  (cd "$ROOT" && CGO_ENABLED=0 go list -deps \
    -f '{{with .Module}}{{if not .Main}}{{.Path}}@{{.Version}}{{end}}{{end}}' \
    . ./cmd/wechatpay-sandbox ./hack/demo-tool | sort -u -t@ -k1,1)
}

# shared_with_operator VERSION: those of operator_modules that Kubernetes
# VERSION requires too (its go.mod lists its whole build list).
shared_with_operator() {
  local gomod
  gomod=$(kubernetes_gomod "$1")
  join -t@ <(awk '$2 ~ /^v/ {print $1} $1 == "require" && $3 ~ /^v/ {print $2}' "$gomod" | sort -u) \
    <(operator_modules)
}

# kube_apiserver_key: the cache key of the demo's and the tests'
# kube-apiserver: its version and a digest of the versions it shares.
kube_apiserver_key() {
  local digest
  digest=$(shared_with_operator "$KUBERNETES_VERSION" | sha256sum)
  echo "$KUBERNETES_VERSION+$(cut -c1-10 <<<"$digest")"
}

# align_with_operator VERSION: in a throwaway module that requires
# Kubernetes VERSION, require the shared modules at the operator's versions.
# A module Kubernetes needs newer than the operator's stays newer; it is
# logged, as the manager then compiles it (and what imports it) again.
align_with_operator() {
  local shared m
  mapfile -t shared < <(shared_with_operator "$1")
  go mod edit "${shared[@]/#/-require=}"
  go get "k8s.io/kubernetes@$1"
  for m in $(comm -13 <(printf '%s\n' "${shared[@]}" | sort) \
    <(go list -m -f '{{.Path}}@{{.Version}}' "${shared[@]%%@*}" | sort)); do
    log "kube-apiserver needs $m, newer than the operator's: raise it in go.mod to share its packages"
  done
}

# The pause image (an OCI tarball for ctr images import) from hack/node/pause.
build_pause_image() {
  (cd "$ROOT" && go run ./hack/node/pause --version "$2" --out "$1/pause-image.tar")
}

# A cached kube-apiserver is fit when it says its version (older caches were
# built unstamped; rebuilding them only links again from Go's build cache).
build_kube_apiserver_ok() {
  [[ $("$1" --version 2>/dev/null) == "Kubernetes ${2%%+*}" ]]
}
build_kube_controller_manager_ok() { build_kube_apiserver_ok "$@"; }
build_kube_scheduler_ok() { build_kube_apiserver_ok "$@"; }
build_kubelet_ok() { build_kube_apiserver_ok "$@"; }
build_kube_proxy_ok() { build_kube_apiserver_ok "$@"; }

# node: what make e2e-node needs in bin/node/, each cached by version.
ensure_node() {
  local v=$NODE_KUBERNETES_VERSION d=$BIN/node
  ensure etcd "$ETCD_VERSION" build_etcd "$d"
  ensure kube-apiserver "$v" build_kube_apiserver "$d"
  ensure kube-controller-manager "$v" build_kube_controller_manager "$d"
  ensure kube-scheduler "$v" build_kube_scheduler "$d"
  ensure kube-proxy "$v" build_kube_proxy "$d"
  ensure kubelet "$v" build_kubelet "$d"
  ensure pause-image.tar "$PAUSE_VERSION" build_pause_image "$d"
}

# ensure_tool NAME: what each name on the command line builds and links.
ensure_tool() {
  case $1 in
    controller-gen) ensure controller-gen "$CONTROLLER_GEN_VERSION" build_controller_gen ;;
    crd-ref-docs) ensure crd-ref-docs "$CRD_REF_DOCS_VERSION" build_crd_ref_docs ;;
    etcd) ensure etcd "$ETCD_VERSION" build_etcd ;;
    kube-apiserver) ensure kube-apiserver "$(kube_apiserver_key)" build_kube_apiserver ;;
    k8s-oldest)
      ensure etcd "$ETCD_VERSION" build_etcd "$BIN/k8s-oldest"
      ensure kube-apiserver "$OLDEST_KUBERNETES_VERSION" build_kube_apiserver "$BIN/k8s-oldest" ;;
    node) ensure_node ;;
    minio) ensure minio "$MINIO_VERSION" build_minio ;;
    helm) ensure helm "$HELM_VERSION" build_helm ;;
    *) log "unknown tool $1"; return 2 ;;
  esac
}

# The tools build side by side: on a cold cache much of a build is waiting
# for the module proxy or for one linker, time another build's compiler uses.
main() {
  local all=(controller-gen crd-ref-docs etcd kube-apiserver k8s-oldest minio helm) tools=() t pids=() failed=0
  if [[ ${1-} == goroot ]]; then huge_page_goroot; return; fi
  [[ $# -gt 0 ]] || set -- all
  # "all" stands for make test's tools, beside any other name given.
  for t in "$@"; do
    if [[ $t == all ]]; then tools+=("${all[@]}"); else tools+=("$t"); fi
  done
  for t in "${tools[@]}"; do
    ensure_tool "$t" &
    pids+=($!)
  done
  for t in "${pids[@]}"; do wait "$t" || failed=1; done
  return $failed
}

main "$@"
