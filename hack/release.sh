#!/usr/bin/env bash
# Writes a release's artifacts to DIST, and changes nothing in the tree:
#
#   hack/release.sh VERSION IMAGE-REPOSITORY DIST     (make release VERSION=v0.2.0 IMG=...)
#
#   install.yaml               the CRD and config/default, image IMAGE-REPOSITORY:VERSION,
#                              for kubectl apply --server-side -f
#   crds.yaml                  the CRD alone (upgrade it first; see docs/install.md "Upgrade")
#   crowdpack-X.Y.Z.tgz        the Helm chart: version X.Y.Z, appVersion VERSION,
#                              image.repository IMAGE-REPOSITORY
#   kubectl-crowdpack-linux-amd64, kubectl-crowdpack-linux-arm64
#                              the kubectl plugin (docs/cli.md), stamped with VERSION
#   crowdpack-image-VERSION-linux-amd64.tar
#                              the manager's image IMAGE-REPOSITORY:VERSION as an OCI
#                              layout (hack/image: no engine, no registry), for
#                              ctr images import, docker load, or skopeo copy to a registry
#   SHA256SUMS                 of them all
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -eq 3 ]] || { echo "usage: hack/release.sh VERSION IMAGE-REPOSITORY DIST" >&2; exit 2; }
version=$1 repo=$2 dist=$3
HELM=${HELM:-bin/helm}
export GOTOOLCHAIN=local

if [[ ! $version =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "release: VERSION=$version is not vMAJOR.MINOR.PATCH[-PRERELEASE], e.g. v0.2.0" >&2
  exit 2
fi
if [[ -z $repo || ${repo##*/} == *:* || $repo == *@* ]]; then
  echo "release: IMG=$repo must be an image repository without tag or digest (the tag is VERSION)" >&2
  exit 2
fi
if [[ -z $dist || $dist == / ]]; then
  echo "release: DIST=$dist is no folder to write to" >&2
  exit 2
fi
chart_version=${version#v}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$dist"
mkdir -p "$dist"

go build -o "$tmp/render" ./hack/render
header() { printf '# crowdpack %s: %s\n' "$version" "$1"; }
{
  header "the CRD and the manager (image $repo:$version). Install or upgrade with"
  echo "#   kubectl apply --server-side -f install.yaml"
  "$tmp/render" --image "$repo:$version" --version "$version" config/default
} >"$dist/install.yaml"
{
  header "the CustomResourceDefinition alone. Upgrade it first with"
  echo "#   kubectl apply --server-side -f crds.yaml"
  "$tmp/render" --image "$repo:$version" --version "$version" --crds only config/default
} >"$dist/crds.yaml"

# The chart, from a copy whose default image is the release's.
cp -R charts/crowdpack "$tmp/crowdpack"
values=$tmp/crowdpack/values.yaml
if [[ $(grep -c '^  repository: ' "$values") != 1 ]]; then
  echo "release: expected one '  repository:' line (image.repository) in charts/crowdpack/values.yaml" >&2
  exit 1
fi
sed -i "s#^  repository: .*#  repository: $repo#" "$values"
home=$tmp/helm-home
HELM_CONFIG_HOME=$home HELM_CACHE_HOME=$home HELM_DATA_HOME=$home \
  "$HELM" package "$tmp/crowdpack" --version "$chart_version" --app-version "$version" --destination "$dist" >/dev/null

# The kubectl plugin, static, for the platforms clusters are driven from.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
plugins=()
for arch in amd64 arm64; do
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath \
    -ldflags "-X github.com/crowdpack/crowdpack/internal/version.Version=$version -X github.com/crowdpack/crowdpack/internal/version.Commit=$commit" \
    -o "$dist/kubectl-crowdpack-linux-$arch" ./cmd/kubectl-crowdpack
  plugins+=("kubectl-crowdpack-linux-$arch")
done

# The manager's image, built as the Dockerfile builds it, from the host's CA roots.
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath \
  -ldflags "-s -w -X github.com/crowdpack/crowdpack/internal/version.Version=$version -X github.com/crowdpack/crowdpack/internal/version.Commit=$commit" \
  -o "$tmp/manager" .
image=crowdpack-image-$version-linux-amd64.tar
go run ./hack/image --manager "$tmp/manager" --version "$version" --repository "$repo" --arch amd64 \
  ${CA_BUNDLE:+--ca-bundle "$CA_BUNDLE"} --out "$dist/$image"

(cd "$dist" && sha256sum install.yaml crds.yaml "crowdpack-$chart_version.tgz" "${plugins[@]}" "$image" >SHA256SUMS)
echo "release $version written to $dist:" >&2
ls -1 "$dist" >&2
