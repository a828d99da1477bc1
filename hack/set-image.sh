#!/usr/bin/env bash
# Sets the manager image of a kustomization: hack/set-image.sh FILE IMAGE[:TAG].
# The tag is what follows the last colon unless that colon is part of a
# registry host:port (registry:5000/crowdpack has no tag).
set -euo pipefail
file=$1 image=$2
name=$image tag=latest
if [[ ${image##*:} != "$image" && ${image##*:} != */* ]]; then
  name=${image%:*} tag=${image##*:}
fi
sed -i "s#^\(\s*newName:\).*#\1 ${name}#; s#^\(\s*newTag:\).*#\1 ${tag}#" "$file"
