#!/usr/bin/env bash
# Deletes the crowdpack CRD, but only when UNINSTALL_CRDS=1: deleting a CRD
# deletes every object of it, so by default this only says what it kept and
# what deleting it would destroy. Used by make undeploy and make uninstall.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBECTL=${KUBECTL:-kubectl}
crd=userpackageuploads.wechatpay.crowdpack.io

count=$($KUBECTL get userpackageuploads.wechatpay.crowdpack.io -A --no-headers 2>/dev/null | wc -l) || count=0
destroys="Deleting the CRD $crd deletes all $count UserPackageUpload(s) in every namespace, and with them each upload's WeChat Pay upload id, the record of its acknowledged parts, its conditions and its history. The files already sent stay at WeChat Pay; an object created again later starts a new upload, refused (FilenameTaken) unless it names a new file."

if [[ ${UNINSTALL_CRDS:-} != 1 ]]; then
  printf 'Kept the CRD %s and its %s UserPackageUpload(s).\n%s\nTo delete it anyway, run again with UNINSTALL_CRDS=1 (make undeploy UNINSTALL_CRDS=1).\n' "$crd" "$count" "$destroys" >&2
  exit 0
fi
printf 'UNINSTALL_CRDS=1: %s\n' "$destroys" >&2
$KUBECTL delete -k config/crd --ignore-not-found
