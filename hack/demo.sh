#!/usr/bin/env bash
# The whole system on this machine, with no cluster and no WeChat Pay account:
# etcd + kube-apiserver, the CRD, the WeChat Pay sandbox, MinIO with a CRM
# export of 1,200,000 raw mobile numbers, and the manager, until the
# UserPackageUpload that hashes it and splits it into 3 uploads is Ready.
#
#   make demo              (builds bin/ first; or hack/demo.sh after make demo-tools build)
#   KEEP=1 make demo       leave everything running to explore with kubectl
#   hack/demo.sh stop      stop what a KEEP=1 run left running
#
# Each step logs to .demo/logs/<step>.log; every process started is stopped
# on exit or Ctrl-C (unless KEEP=1). Needs bash 5, kubectl, curl and Go.
set -euo pipefail
((BASH_VERSINFO[0] >= 5)) || { echo "hack/demo.sh needs bash 5 or newer" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DEMO=$ROOT/.demo BIN=$ROOT/bin LOGS=$ROOT/.demo/logs
NS=crowdpack-demo
# The platform's side: the operator's namespace holds the brand's keys; the
# team namespace $NS uses the WeChatPayBrand $BRAND and holds no key.
OPERATOR_NS=crowdpack-system BRAND=demo
# The manager reads brand Secrets from its own namespace, which a cluster
# tells it through POD_NAMESPACE (--brand-secret-namespace's default).
export POD_NAMESPACE=$OPERATOR_NS
# The raw-export sample: a header row, raw numbers hashed (MD5) in the
# cluster, at most 500,000 lines per upload, expanding a crowd package.
SAMPLE=config/samples/wechatpay_v1alpha1_userpackageupload_raw_export.yaml
UPU=crm-members-2026-12
BUCKET=crowd-packages KEY=crm/2026-12/crm_members_2026_12.csv LINES=1200000
export MINIO_ROOT_USER=crowdpack-demo MINIO_ROOT_PASSWORD=crowdpack-demo-secret MINIO_BROWSER=off
export GOTOOLCHAIN=local

# stop: stop the processes a run recorded in .demo/pids, all at once but
# etcd (the first one started) last, so kube-apiserver never waits for a lost
# etcd. Anything still up after 10 s is killed.
stop() {
  [[ -f $DEMO/pids ]] || return 0
  local procs; mapfile -t procs <"$DEMO/pids"
  terminate "${procs[@]:1}"
  terminate "${procs[0]}"
  rm -f "$DEMO/pids"
}
# terminate "PID NAME"...: SIGTERM each, wait for them, SIGKILL stragglers.
terminate() {
  local p pids=() i
  for p in "$@"; do
    # Only a process of ours: after a reboot the PID may belong to another.
    [[ $(ps -p "${p%% *}" -o args= 2>/dev/null) == "$BIN/"* ]] || continue
    kill "${p%% *}" 2>/dev/null && pids+=("${p%% *}") && echo "[demo] stopping ${p#* } (pid ${p%% *})"
  done
  for ((i = 0; i < 100; i++)); do alive "${pids[@]}" || return 0; sleep 0.1; done
  kill -9 "${pids[@]}" 2>/dev/null || true
}
alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
if [[ ${1:-} == stop ]]; then stop; exit 0; fi

# ---- plumbing: steps, background processes, cleanup --------------------------
CURRENT=""
now() { local t=${EPOCHREALTIME/./}; echo "${t:0:-5}"; } # tenths of a second

# step NAME DESCRIPTION COMMAND...: run COMMAND with its output in NAME's log.
step() {
  CURRENT=$1
  local start; start=$(now)
  printf '[demo] %s... ' "$2"
  "${@:3}" >"$LOGS/$1.log" 2>&1
  local d=$(($(now) - start))
  printf '(%d.%ds)\n' $((d / 10)) $((d % 10))
  CURRENT=""
}

# launch NAME COMMAND...: start COMMAND in the background, logging to NAME.log.
launch() {
  local name=$1; shift
  "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
  echo "$! $name" >>"$DEMO/pids"
}

# until_ok SECONDS COMMAND...: retry COMMAND until it succeeds; give up early
# when a process the demo started has died.
until_ok() {
  local secs=$1 pid name; shift
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    while read -r pid name; do
      kill -0 "$pid" 2>/dev/null || { echo "$name exited; see $LOGS/$name.log"; tail -5 "$LOGS/$name.log"; return 1; }
    done <"$DEMO/pids"
    ((SECONDS < deadline)) || { echo "timed out after $secs s: $*"; return 1; }
    sleep 0.5
  done
}

finish() {
  local rc=$?
  exec 1>&3 2>&4 # back to the terminal, even when interrupted inside a step
  if ((rc != 0)) && [[ -n $CURRENT ]]; then
    printf '\n[demo] %s at step "%s"; its log is %s:\n' "$( ((rc == 130)) && echo INTERRUPTED || echo FAILED)" \
      "$CURRENT" "$LOGS/$CURRENT.log"
    tail -20 "$LOGS/$CURRENT.log" | sed 's/^/    /'
  fi
  # KEEP=1 leaves everything running, after a failure too (to debug it), but
  # not after Ctrl-C.
  if [[ ${KEEP:-} == 1 && $rc != 130 && -s $DEMO/pids ]]; then
    printf '\n[demo] KEEP=1: everything is still running. Explore with:\n'
    printf '  export KUBECONFIG=%s\n  kubectl get upu -A -o wide\n' "$DEMO/kubeconfig"
    [[ -z ${SANDBOX_ADMIN_PORT:-} ]] || printf '  curl -s http://127.0.0.1:%s/sandbox/records\n' "$SANDBOX_ADMIN_PORT"
    printf 'Stop it with: hack/demo.sh stop\n'
  else
    stop >"$LOGS/stop.log" && echo "[demo] stopped every process it started (KEEP=1 leaves them running)"
  fi
  exit "$rc"
}
exec 3>&1 4>&2 # the terminal, kept for finish
trap finish EXIT
trap 'exit 130' INT TERM

k() { kubectl --kubeconfig "$DEMO/kubeconfig" "$@"; }

# ---- the steps ----------------------------------------------------------------
stop # a previous KEEP=1 run
rm -rf "$DEMO" && mkdir -p "$LOGS" "$DEMO/bin" && touch "$DEMO/pids"
for b in etcd kube-apiserver minio manager wechatpay-sandbox; do
  [[ -x $BIN/$b ]] || { echo "[demo] $BIN/$b is missing: run 'make demo-tools build' (or 'make demo')"; exit 1; }
done

step build-helper "building the demo helper (hack/demo-tool)" \
  env CGO_ENABLED=0 go build -trimpath -o "$DEMO/bin/demo-tool" ./hack/demo-tool
TOOL=$DEMO/bin/demo-tool

choose_ports() { mapfile -t P < <("$TOOL" ports 9); echo "${P[*]}"; ((${#P[@]} == 9)); }
step ports "choosing free ports on 127.0.0.1" choose_ports
ETCD_PORT=${P[0]} ETCD_PEER_PORT=${P[1]} API_PORT=${P[2]} SANDBOX_PORT=${P[3]} SANDBOX_ADMIN_PORT=${P[4]}
MINIO_PORT=${P[5]} MINIO_CONSOLE_PORT=${P[6]} METRICS_PORT=${P[7]} PROBE_PORT=${P[8]}

control_plane() {
  mkdir -p "$DEMO/apiserver"
  # The service-account signing key kube-apiserver insists on.
  if command -v openssl >/dev/null; then
    openssl genrsa -out "$DEMO/apiserver/sa.key" 2048
    openssl rsa -in "$DEMO/apiserver/sa.key" -pubout -out "$DEMO/apiserver/sa.pub"
  else
    "$TOOL" sa-key "$DEMO/apiserver"
  fi
  # One static token, for a user in system:masters (cluster admin).
  local token; token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$token,demo-admin,demo-admin,system:masters" >"$DEMO/tokens.csv"
  launch etcd "$BIN/etcd" --data-dir "$DEMO/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT"
  launch kube-apiserver "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --secure-port "$API_PORT" --cert-dir "$DEMO/apiserver" \
    --token-auth-file "$DEMO/tokens.csv" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$DEMO/apiserver/sa.pub" \
    --service-account-signing-key-file "$DEMO/apiserver/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24
  # The serving certificate is self-signed: skip verification (local demo only).
  cat >"$DEMO/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: demo
  cluster: {server: "https://127.0.0.1:$API_PORT", insecure-skip-tls-verify: true}
users:
- name: demo-admin
  user: {token: "$token"}
contexts:
- name: demo
  context: {cluster: demo, user: demo-admin, namespace: $NS}
current-context: demo
EOF
  until_ok 90 k get --raw /readyz
}
step control-plane "starting etcd and kube-apiserver" control_plane

install_crd() {
  k apply --server-side -k config/crd
  k wait --for=condition=Established crd/userpackageuploads.wechatpay.crowdpack.io \
    crd/wechatpaybrands.wechatpay.crowdpack.io --timeout=60s
}
step crd "installing the UserPackageUpload and WeChatPayBrand CRDs" install_crd

sandbox() {
  "$BIN/wechatpay-sandbox" gen-identity --out "$DEMO/identity" --namespace "$OPERATOR_NS" --secret-name "wechatpay-brand-$BRAND"
  # 5 MiB parts (the default): each upload of 500,000 MD5 lines (16.5 MB) has 4.
  local id=$DEMO/identity
  launch sandbox "$BIN/wechatpay-sandbox" serve --config "$id/sandbox.yaml" --addr "127.0.0.1:$SANDBOX_PORT" \
    --tls-cert "$id/tls.crt" --tls-key "$id/tls.key" --admin-addr "127.0.0.1:$SANDBOX_ADMIN_PORT"
  until_ok 30 curl -fsS "http://127.0.0.1:$SANDBOX_ADMIN_PORT/sandbox/records"
}
step start-sandbox "starting the WeChat Pay sandbox (HTTPS)" sandbox

minio() {
  launch minio "$BIN/minio" server "$DEMO/minio" --address "127.0.0.1:$MINIO_PORT" \
    --console-address "127.0.0.1:$MINIO_CONSOLE_PORT"
  until_ok 60 curl -fsS "http://127.0.0.1:$MINIO_PORT/minio/health/live"
  "$TOOL" put-raw-export "127.0.0.1:$MINIO_PORT" "$BUCKET" "$KEY" "$LINES"
}
step start-minio "starting MinIO and uploading a CRM export: a header row and $LINES raw mobile numbers" minio

create_objects() {
  # The platform: the brand's Secret in the operator's namespace, the
  # WeChatPayBrand allowing namespaces labelled crowdpack.io/brand=$BRAND.
  k create namespace "$OPERATOR_NS"
  k apply -f "$DEMO/identity/secret.yaml"
  k patch --local -f config/samples/platform/wechatpay_v1alpha1_wechatpaybrand.yaml --type merge -o yaml \
    -p "$(printf '{"metadata":{"name":"%s"},"spec":{"credentialsSecretRef":{"name":"wechatpay-brand-%s"},"allowedNamespaces":{"selector":{"matchLabels":{"crowdpack.io/brand":"%s"}}}}}' \
      "$BRAND" "$BRAND" "$BRAND")" | k apply -f -
  # The team: its namespace, labelled for the brand, and its storage Secret.
  k create namespace "$NS"
  k label namespace "$NS" "crowdpack.io/brand=$BRAND"
  k -n "$NS" create secret generic minio-credentials \
    --from-literal=accesskey="$MINIO_ROOT_USER" --from-literal=secretkey="$MINIO_ROOT_PASSWORD"
  # The raw-export sample (written for Tencent COS), pointed at this MinIO
  # (path-style, plain HTTP, with its Secret), for the brand instead of a
  # Secret of its own. Its file settings (header row, MD5, the default
  # 500,000 lines per upload) and its userPackageID are kept.
  local patch
  patch=$(printf '{"spec":{"source":{"s3":{"endpoint":"127.0.0.1:%s","region":null,"bucketLookup":"path","insecure":true,"bucket":"%s","key":"%s","secretRef":{"name":"minio-credentials"}}},"credentialsRef":null,"brandRef":{"name":"%s"}}}' \
    "$MINIO_PORT" "$BUCKET" "$KEY" "$BRAND")
  k patch --local -f "$SAMPLE" --type merge -p "$patch" -o yaml | k -n "$NS" apply -f -
}
step objects "creating the WeChatPayBrand $BRAND (keys in $OPERATOR_NS), namespace $NS and UserPackageUpload $UPU" create_objects

manager() {
  # The demo's MinIO listens on 127.0.0.1 over plain HTTP, which a
  # production manager refuses: allow exactly that address (every other
  # loopback address stays denied) and plain HTTP. Metrics are plain HTTP
  # too, on loopback, for curl without a token.
  launch manager "$BIN/manager" --kubeconfig "$DEMO/kubeconfig" \
    --wechatpay-endpoint "https://127.0.0.1:$SANDBOX_PORT" --wechatpay-ca-file "$DEMO/identity/ca.crt" \
    --source-allowed-cidrs 127.0.0.1/32 --allow-insecure-sources --metrics-secure=false \
    --metrics-bind-address "127.0.0.1:$METRICS_PORT" --health-probe-bind-address "127.0.0.1:$PROBE_PORT"
  until_ok 60 curl -fsS "http://127.0.0.1:$PROBE_PORT/readyz"
}
step start-manager "starting the manager" manager

ready() {
  k -n "$NS" wait --for=condition=Ready "upu/$UPU" --timeout=180s && return
  k -n "$NS" get upu "$UPU" -o yaml; tail -30 "$LOGS/manager.log"; return 1
}
step wait-ready "waiting for upu/$UPU to be Ready (manager log: $LOGS/manager.log)" ready

# ---- what a user looks at -------------------------------------------------------
echo; echo "\$ kubectl get upu -o wide"
k -n "$NS" get upu -o wide
echo; echo "\$ kubectl get wxbrand   (the platform's brand: its keys stay in $OPERATOR_NS)"
k get wxbrand
echo; echo "\$ kubectl get secrets -n $NS   (no brand key in the team's namespace)"
k -n "$NS" get secrets
echo; echo "\$ kubectl get upu $UPU -o jsonpath=... (status)"
k -n "$NS" get upu "$UPU" -o jsonpath='source:   {.status.source.size} bytes, {.status.source.digest}
content:  {.status.content.lines} raw numbers (header row skipped), {.status.content.invalidLines} invalid
uploads:  {.status.summary.uploadsProgress} finished, {.status.summary.lines} MD5 lines, {.status.summary.size} bytes, {.status.summary.partsProgress} parts
{range .status.uploads[*]}upload {.index}: {.filename}  lines {.firstLine}-{.lastLine} of the export -> {.lines} MD5 lines; id {.id}; merged {.mergedAt}, expanded into {.expanded[*].userPackageID} at {.expanded[*].at}
{end}{range .status.conditions[*]}condition {.type}={.status} ({.reason}): {.message}
{end}'
echo; echo "\$ kubectl events --for upu/$UPU"
k -n "$NS" events --for "upu/$UPU"
echo; echo "WeChat Pay sandbox: the calls it answered"
"$TOOL" records "http://127.0.0.1:$SANDBOX_ADMIN_PORT/sandbox/records"
echo; echo "WeChat Pay sandbox: the merged files, checked against the MD5 of the export's numbers (computed apart)"
read -ra IDS <<<"$(k -n "$NS" get upu "$UPU" -o jsonpath='{.status.uploads[*].id}')"
"$TOOL" merged "http://127.0.0.1:$SANDBOX_ADMIN_PORT" "$LINES" "${IDS[@]}"
