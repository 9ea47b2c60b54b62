#!/usr/bin/env bash
# imgpipe upgrade plan (conservative path) for cluster homelab: 7 nodes
# from Talos v1.7.4, v1.7.6, Kubernetes 1.30.3
# to   Talos v1.10.9, Kubernetes 1.33.6
#
# Review before running. Use talosctl v1.10.9 or newer, and a kubeconfig for kubectl.
# Safe to re-run after a failure: every node and Kubernetes step is checked first
# and skipped when done; nothing is downgraded. A failing command stops the script.
set -euo pipefail

SNAPSHOT_DIR="${SNAPSHOT_DIR:-.}"   # etcd snapshots before each control-plane hop go here
GPU_CHECK_TRIES="${GPU_CHECK_TRIES:-30}"

# talos_version ADDR: the Talos version the node runs now (talosctl version, server part).
talos_version() {
  talosctl version --nodes "$1" | awk '/^Server:/ { s = 1 } s && $1 == "Tag:" { print $2; exit }'
}
# node_schematic NODE: the running schematic (annotation extensions.talos.dev/schematic).
node_schematic() {
  kubectl get node "$1" -o jsonpath='{.metadata.annotations.extensions\.talos\.dev/schematic}'
}
# version_lt A B: A is older than B, in semver order: a prerelease (v1.10.0-beta.1) comes
# before its release (v1.10.0), which sort -V alone gets backwards.
version_lt() {
  local ca="${1%%-*}" cb="${2%%-*}"
  [ "$1" = "$2" ] && return 1
  if [ "$ca" != "$cb" ]; then
    [ "$(printf '%s\n%s\n' "$ca" "$cb" | sort -V | head -n 1)" = "$ca" ]
    return
  fi
  # Same release: the one without a prerelease part is the newer.
  [ "$1" = "$ca" ] && return 1
  [ "$2" = "$cb" ] && return 0
  [ "$(printf '%s\n%s\n' "${1#"$ca"}" "${2#"$cb"}" | sort -V | head -n 1)" = "${1#"$ca"}" ]
}
# needs_upgrade NODE ADDR TALOS SCHEMATIC: true when the node runs an older Talos, or
# TALOS with another known schematic (a re-image); false, with a line saying why, when it is
# at or past the step. Never true for a node past TALOS: no downgrades.
needs_upgrade() {
  local cur schematic
  cur="$(talos_version "$2")"
  if [ -z "$cur" ]; then
    echo "cannot read the running Talos version of $1 ($2): stopping" >&2
    exit 1
  fi
  if version_lt "$cur" "$3"; then
    return 0
  fi
  if [ "$cur" != "$3" ]; then
    echo "skip $1: runs $cur, past $3 (never downgraded)"
    return 1
  fi
  # An unknown running schematic (no annotation) is not a reason to upgrade again.
  schematic="$(node_schematic "$1")"
  if [ -n "$4" ] && [ -n "$schematic" ] && [ "$schematic" != "$4" ]; then
    return 0
  fi
  echo "skip $1: runs $3 already"
  return 1
}
# etcd_snapshot NODE ADDR: save etcd to a dated file before a control-plane node moves.
etcd_snapshot() {
  local file
  file="$SNAPSHOT_DIR/etcd-$1-$(date -u +%Y%m%dT%H%M%SZ).snapshot"
  echo "etcd snapshot of $1 -> $file"
  talosctl etcd snapshot --nodes "$2" "$file"
}
# apiserver_version: the API server's version (v1.31.4).
apiserver_version() {
  kubectl get --raw /version | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p'
}
# oldest_kubelet: the oldest kubelet version of any node.
oldest_kubelet() {
  kubectl get nodes -o jsonpath='{range .items[*]}{.status.nodeInfo.kubeletVersion}{"\n"}{end}' | sort -V | head -n 1
}
# needs_k8s VERSION: true when the API server or a kubelet is older than VERSION;
# false when everything is there, or when the API server is past it (no downgrade).
needs_k8s() {
  local api kubelet
  api="$(apiserver_version)"
  kubelet="$(oldest_kubelet)"
  if [ -z "$api" ] || [ -z "$kubelet" ]; then
    echo "cannot read the Kubernetes versions: stopping" >&2
    exit 1
  fi
  if version_lt "v$1" "$api"; then
    echo "skip upgrade-k8s --to $1: the API server runs $api (never downgraded)"
    return 1
  fi
  if version_lt "$api" "v$1" || version_lt "$kubelet" "v$1"; then
    return 0
  fi
  echo "skip upgrade-k8s --to $1: API server and every kubelet run it already"
  return 1
}
# require_nvidia NODE ADDR: the NVIDIA kernel modules are loaded again, else stop with
# the node still cordoned.
require_nvidia() {
  local i modules
  for ((i = 0; i < GPU_CHECK_TRIES; i++)); do
    # Read first, then grep: grep -q exiting early would fail the pipe under pipefail.
    modules="$(talosctl read --nodes "$2" /proc/modules || true)"
    if grep -q '^nvidia ' <<<"$modules"; then
      return 0
    fi
    sleep 10
  done
  echo "NVIDIA modules are not loaded on $1 ($2) after its upgrade: left cordoned, stopping" >&2
  exit 1
}
# wait_batch PID:NODE...: wait for every upgrade of a parallel batch, then fail if any
# failed, naming them; no sibling is left running when the script exits.
wait_batch() {
  local job failed=()
  for job in "$@"; do
    if ! wait "${job%%:*}"; then
      failed+=("${job#*:}")
    fi
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    echo "upgrade failed on: ${failed[*]} (the rest of the batch finished); fix and re-run: finished nodes are skipped" >&2
    exit 1
  fi
}
# On Ctrl-C or TERM, stop the batch's talosctl processes too.
trap 'jobs -p | xargs -r kill 2>/dev/null; wait; exit 130' INT TERM
HEALTH_TIMEOUT=10m

# === hop 1/4: Talos v1.7.7, Kubernetes 1.30.3 ===
echo 'hop 1/4: Talos v1.7.7'
# Talos v1.7.7 as every profile of the hop resolves for it
imgpipe --config ../../upgrade/testdata/site.yaml resolve --talos v1.7.7 --kubernetes 1.30.3 --profile controlplane,gpu,worker --lock upgrade-v1.7.7.lock.json
# images of Talos v1.7.7 with Kubernetes 1.30.3 into the site mirrors
imgpipe --config ../../upgrade/testdata/site.yaml mirror --lock upgrade-v1.7.7.lock.json
# the factory builds an installer on its first pull; build it before the first node needs it
imgpipe --config ../../upgrade/testdata/site.yaml schematic prewarm --lock upgrade-v1.7.7.lock.json --profile controlplane
# the factory builds an installer on its first pull; build it before the first node needs it
imgpipe --config ../../upgrade/testdata/site.yaml schematic prewarm --lock upgrade-v1.7.7.lock.json --profile gpu
# cp-1: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade cp-1 10.0.0.11 v1.7.7 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  etcd_snapshot cp-1 10.0.0.11
  talosctl upgrade --nodes 10.0.0.11 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.7.7 --preserve
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
# cp-2: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade cp-2 10.0.0.12 v1.7.7 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  etcd_snapshot cp-2 10.0.0.12
  talosctl upgrade --nodes 10.0.0.12 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.7.7 --preserve
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
# cp-3: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade cp-3 10.0.0.13 v1.7.7 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  etcd_snapshot cp-3 10.0.0.13
  talosctl upgrade --nodes 10.0.0.13 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.7.7 --preserve
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
# gpu-1: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade gpu-1 10.0.0.31 v1.7.7 5600640599fdf863b07242361615accf55aa8e66ff08aa16046d72dfae1db655; then
  kubectl drain gpu-1 --ignore-daemonsets --delete-emptydir-data --timeout "$HEALTH_TIMEOUT"
  talosctl upgrade --nodes 10.0.0.31 --image factory.talos.dev/installer/5600640599fdf863b07242361615accf55aa8e66ff08aa16046d72dfae1db655:v1.7.7 --preserve
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
require_nvidia gpu-1 10.0.0.31
kubectl uncordon gpu-1
batch=()
# worker-1: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade worker-1 10.0.0.21 v1.7.7 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  talosctl upgrade --nodes 10.0.0.21 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.7.7 --preserve &
  batch+=("$!:"worker-1)
fi
# worker-2: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade worker-2 10.0.0.22 v1.7.7 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  talosctl upgrade --nodes 10.0.0.22 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.7.7 --preserve &
  batch+=("$!:"worker-2)
fi
wait_batch ${batch[@]+"${batch[@]}"}
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
# worker-3: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade worker-3 10.0.0.23 v1.7.7 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  talosctl upgrade --nodes 10.0.0.23 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.7.7 --preserve
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"

# === hop 2/4: Talos v1.8.4, Kubernetes 1.30.3 ===
echo 'hop 2/4: Talos v1.8.4'
# Talos v1.8.4 as every profile of the hop resolves for it
imgpipe --config ../../upgrade/testdata/site.yaml resolve --talos v1.8.4 --kubernetes 1.30.3 --profile controlplane,gpu,worker --lock upgrade-v1.8.4.lock.json
# images of Talos v1.8.4 with Kubernetes 1.30.3 into the site mirrors
imgpipe --config ../../upgrade/testdata/site.yaml mirror --lock upgrade-v1.8.4.lock.json
# the factory builds an installer on its first pull; build it before the first node needs it
imgpipe --config ../../upgrade/testdata/site.yaml schematic prewarm --lock upgrade-v1.8.4.lock.json --profile controlplane
# the factory builds an installer on its first pull; build it before the first node needs it
imgpipe --config ../../upgrade/testdata/site.yaml schematic prewarm --lock upgrade-v1.8.4.lock.json --profile gpu
# cp-1: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade cp-1 10.0.0.11 v1.8.4 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  etcd_snapshot cp-1 10.0.0.11
  talosctl upgrade --nodes 10.0.0.11 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.8.4 --preserve
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
# cp-2: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade cp-2 10.0.0.12 v1.8.4 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  etcd_snapshot cp-2 10.0.0.12
  talosctl upgrade --nodes 10.0.0.12 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.8.4 --preserve
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
# cp-3: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade cp-3 10.0.0.13 v1.8.4 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  etcd_snapshot cp-3 10.0.0.13
  talosctl upgrade --nodes 10.0.0.13 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.8.4 --preserve
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
# gpu-1: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise; schematic 5600640599fd -> fad91d055be9
if needs_upgrade gpu-1 10.0.0.31 v1.8.4 fad91d055be9791728e764d0ef7e2f93085abdee59db71e66c0a519dbee73a38; then
  kubectl drain gpu-1 --ignore-daemonsets --delete-emptydir-data --timeout "$HEALTH_TIMEOUT"
  talosctl upgrade --nodes 10.0.0.31 --image factory.talos.dev/installer/fad91d055be9791728e764d0ef7e2f93085abdee59db71e66c0a519dbee73a38:v1.8.4 --preserve
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
require_nvidia gpu-1 10.0.0.31
kubectl uncordon gpu-1
batch=()
# worker-1: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade worker-1 10.0.0.21 v1.8.4 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  talosctl upgrade --nodes 10.0.0.21 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.8.4 --preserve &
  batch+=("$!:"worker-1)
fi
# worker-2: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade worker-2 10.0.0.22 v1.8.4 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  talosctl upgrade --nodes 10.0.0.22 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.8.4 --preserve &
  batch+=("$!:"worker-2)
fi
wait_batch ${batch[@]+"${batch[@]}"}
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
# worker-3: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
if needs_upgrade worker-3 10.0.0.23 v1.8.4 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  talosctl upgrade --nodes 10.0.0.23 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.8.4 --preserve
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"

# === hop 3/4: Talos v1.9.6, Kubernetes 1.30.3 ===
echo 'hop 3/4: Talos v1.9.6'
# Talos v1.9.6 as every profile of the hop resolves for it
imgpipe --config ../../upgrade/testdata/site.yaml resolve --talos v1.9.6 --kubernetes 1.30.3 --profile controlplane,gpu,worker --lock upgrade-v1.9.6.lock.json
# images of Talos v1.9.6 with Kubernetes 1.30.3 into the site mirrors
imgpipe --config ../../upgrade/testdata/site.yaml mirror --lock upgrade-v1.9.6.lock.json
# the factory builds an installer on its first pull; build it before the first node needs it
imgpipe --config ../../upgrade/testdata/site.yaml schematic prewarm --lock upgrade-v1.9.6.lock.json --profile controlplane
# the factory builds an installer on its first pull; build it before the first node needs it
imgpipe --config ../../upgrade/testdata/site.yaml schematic prewarm --lock upgrade-v1.9.6.lock.json --profile gpu
if needs_upgrade cp-1 10.0.0.11 v1.9.6 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  etcd_snapshot cp-1 10.0.0.11
  talosctl upgrade --nodes 10.0.0.11 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
if needs_upgrade cp-2 10.0.0.12 v1.9.6 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  etcd_snapshot cp-2 10.0.0.12
  talosctl upgrade --nodes 10.0.0.12 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
if needs_upgrade cp-3 10.0.0.13 v1.9.6 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  etcd_snapshot cp-3 10.0.0.13
  talosctl upgrade --nodes 10.0.0.13 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
if needs_upgrade gpu-1 10.0.0.31 v1.9.6 fad91d055be9791728e764d0ef7e2f93085abdee59db71e66c0a519dbee73a38; then
  kubectl drain gpu-1 --ignore-daemonsets --delete-emptydir-data --timeout "$HEALTH_TIMEOUT"
  talosctl upgrade --nodes 10.0.0.31 --image factory.talos.dev/installer/fad91d055be9791728e764d0ef7e2f93085abdee59db71e66c0a519dbee73a38:v1.9.6
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
require_nvidia gpu-1 10.0.0.31
kubectl uncordon gpu-1
batch=()
if needs_upgrade worker-1 10.0.0.21 v1.9.6 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  talosctl upgrade --nodes 10.0.0.21 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6 &
  batch+=("$!:"worker-1)
fi
if needs_upgrade worker-2 10.0.0.22 v1.9.6 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  talosctl upgrade --nodes 10.0.0.22 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6 &
  batch+=("$!:"worker-2)
fi
wait_batch ${batch[@]+"${batch[@]}"}
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
if needs_upgrade worker-3 10.0.0.23 v1.9.6 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  talosctl upgrade --nodes 10.0.0.23 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"

# === hop 4/4: Talos v1.10.9, Kubernetes 1.30.3 -> 1.33.6 ===
echo 'hop 4/4: Talos v1.10.9'
# Talos v1.10.9 as every profile of the hop resolves for it
imgpipe --config ../../upgrade/testdata/site.yaml resolve --talos v1.10.9 --kubernetes 1.30.3 --profile controlplane,gpu,worker --lock upgrade-v1.10.9.lock.json
# images of Talos v1.10.9 with Kubernetes 1.30.3 into the site mirrors
imgpipe --config ../../upgrade/testdata/site.yaml mirror --lock upgrade-v1.10.9.lock.json
# Kubernetes 1.31.4, after Talos v1.10.9
imgpipe --config ../../upgrade/testdata/site.yaml resolve --talos v1.10.9 --kubernetes 1.31.4 --profile controlplane,gpu,worker --lock upgrade-v1.10.9-k8s-1.31.4.lock.json
# images of Talos v1.10.9 with Kubernetes 1.31.4 into the site mirrors
imgpipe --config ../../upgrade/testdata/site.yaml mirror --lock upgrade-v1.10.9-k8s-1.31.4.lock.json
# Kubernetes 1.32.4, after Talos v1.10.9
imgpipe --config ../../upgrade/testdata/site.yaml resolve --talos v1.10.9 --kubernetes 1.32.4 --profile controlplane,gpu,worker --lock upgrade-v1.10.9-k8s-1.32.4.lock.json
# images of Talos v1.10.9 with Kubernetes 1.32.4 into the site mirrors
imgpipe --config ../../upgrade/testdata/site.yaml mirror --lock upgrade-v1.10.9-k8s-1.32.4.lock.json
# Kubernetes 1.33.6, after Talos v1.10.9
imgpipe --config ../../upgrade/testdata/site.yaml resolve --talos v1.10.9 --kubernetes 1.33.6 --profile controlplane,gpu,worker --lock upgrade-v1.10.9-k8s-1.33.6.lock.json
# images of Talos v1.10.9 with Kubernetes 1.33.6 into the site mirrors
imgpipe --config ../../upgrade/testdata/site.yaml mirror --lock upgrade-v1.10.9-k8s-1.33.6.lock.json
# the factory builds an installer on its first pull; build it before the first node needs it
imgpipe --config ../../upgrade/testdata/site.yaml schematic prewarm --lock upgrade-v1.10.9.lock.json --profile controlplane
# the factory builds an installer on its first pull; build it before the first node needs it
imgpipe --config ../../upgrade/testdata/site.yaml schematic prewarm --lock upgrade-v1.10.9.lock.json --profile gpu
if needs_upgrade cp-1 10.0.0.11 v1.10.9 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  etcd_snapshot cp-1 10.0.0.11
  talosctl upgrade --nodes 10.0.0.11 --image factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.10.9
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
if needs_upgrade cp-2 10.0.0.12 v1.10.9 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  etcd_snapshot cp-2 10.0.0.12
  talosctl upgrade --nodes 10.0.0.12 --image factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.10.9
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
if needs_upgrade cp-3 10.0.0.13 v1.10.9 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  etcd_snapshot cp-3 10.0.0.13
  talosctl upgrade --nodes 10.0.0.13 --image factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.10.9
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
if needs_upgrade gpu-1 10.0.0.31 v1.10.9 fad91d055be9791728e764d0ef7e2f93085abdee59db71e66c0a519dbee73a38; then
  kubectl drain gpu-1 --ignore-daemonsets --delete-emptydir-data --timeout "$HEALTH_TIMEOUT"
  talosctl upgrade --nodes 10.0.0.31 --image factory.talos.dev/nocloud-installer/fad91d055be9791728e764d0ef7e2f93085abdee59db71e66c0a519dbee73a38:v1.10.9
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
require_nvidia gpu-1 10.0.0.31
kubectl uncordon gpu-1
batch=()
if needs_upgrade worker-1 10.0.0.21 v1.10.9 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  talosctl upgrade --nodes 10.0.0.21 --image factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.10.9 &
  batch+=("$!:"worker-1)
fi
if needs_upgrade worker-2 10.0.0.22 v1.10.9 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  talosctl upgrade --nodes 10.0.0.22 --image factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.10.9 &
  batch+=("$!:"worker-2)
fi
wait_batch ${batch[@]+"${batch[@]}"}
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
if needs_upgrade worker-3 10.0.0.23 v1.10.9 ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515; then
  talosctl upgrade --nodes 10.0.0.23 --image factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.10.9
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
if needs_k8s 1.31.4; then
  talosctl upgrade-k8s --nodes 10.0.0.11 --to 1.31.4 --dry-run
  talosctl upgrade-k8s --nodes 10.0.0.11 --to 1.31.4
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
if needs_k8s 1.32.4; then
  talosctl upgrade-k8s --nodes 10.0.0.11 --to 1.32.4 --dry-run
  talosctl upgrade-k8s --nodes 10.0.0.11 --to 1.32.4
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
if needs_k8s 1.33.6; then
  talosctl upgrade-k8s --nodes 10.0.0.11 --to 1.33.6 --dry-run
  talosctl upgrade-k8s --nodes 10.0.0.11 --to 1.33.6
fi
talosctl health --nodes 10.0.0.11 --wait-timeout "$HEALTH_TIMEOUT"
