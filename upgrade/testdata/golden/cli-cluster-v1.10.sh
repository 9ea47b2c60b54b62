#!/usr/bin/env bash
# imgpipe upgrade plan (conservative path) for cluster homelab: 7 nodes
# from Talos v1.7.4, v1.7.6, Kubernetes 1.30.3
# to   Talos v1.10.9, Kubernetes 1.33.6
#
# Review before running. Use talosctl v1.10.9 or newer, and a kubeconfig for kubectl.
# Each hop starts only when the previous one is healthy; a failing command stops the script.
set -euo pipefail

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
talosctl upgrade --nodes 10.0.0.11 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.7.7 --preserve
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
# cp-2: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
talosctl upgrade --nodes 10.0.0.12 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.7.7 --preserve
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
# cp-3: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
talosctl upgrade --nodes 10.0.0.13 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.7.7 --preserve
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
# GPU node: move GPU workloads off before the driver extensions change
kubectl drain gpu-1 --ignore-daemonsets --delete-emptydir-data --timeout 10m
# gpu-1: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
talosctl upgrade --nodes 10.0.0.31 --image factory.talos.dev/installer/5600640599fdf863b07242361615accf55aa8e66ff08aa16046d72dfae1db655:v1.7.7 --preserve
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
kubectl uncordon gpu-1
# worker-1: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
# worker-2: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
pids=()
talosctl upgrade --nodes 10.0.0.21 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.7.7 --preserve &
pids+=($!)
talosctl upgrade --nodes 10.0.0.22 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.7.7 --preserve &
pids+=($!)
for pid in "${pids[@]}"; do wait "$pid"; done
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
# worker-3: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
talosctl upgrade --nodes 10.0.0.23 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.7.7 --preserve
talosctl health --nodes 10.0.0.11 --wait-timeout 10m

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
talosctl upgrade --nodes 10.0.0.11 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.8.4 --preserve
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
# cp-2: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
talosctl upgrade --nodes 10.0.0.12 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.8.4 --preserve
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
# cp-3: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
talosctl upgrade --nodes 10.0.0.13 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.8.4 --preserve
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
# GPU node: move GPU workloads off before the driver extensions change
kubectl drain gpu-1 --ignore-daemonsets --delete-emptydir-data --timeout 10m
# gpu-1: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise; schematic 5600640599fd -> fad91d055be9
talosctl upgrade --nodes 10.0.0.31 --image factory.talos.dev/installer/fad91d055be9791728e764d0ef7e2f93085abdee59db71e66c0a519dbee73a38:v1.8.4 --preserve
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
kubectl uncordon gpu-1
# worker-1: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
# worker-2: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
pids=()
talosctl upgrade --nodes 10.0.0.21 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.8.4 --preserve &
pids+=($!)
talosctl upgrade --nodes 10.0.0.22 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.8.4 --preserve &
pids+=($!)
for pid in "${pids[@]}"; do wait "$pid"; done
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
# worker-3: --preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise
talosctl upgrade --nodes 10.0.0.23 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.8.4 --preserve
talosctl health --nodes 10.0.0.11 --wait-timeout 10m

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
talosctl upgrade --nodes 10.0.0.11 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
talosctl upgrade --nodes 10.0.0.12 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
talosctl upgrade --nodes 10.0.0.13 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
# GPU node: move GPU workloads off before the driver extensions change
kubectl drain gpu-1 --ignore-daemonsets --delete-emptydir-data --timeout 10m
talosctl upgrade --nodes 10.0.0.31 --image factory.talos.dev/installer/fad91d055be9791728e764d0ef7e2f93085abdee59db71e66c0a519dbee73a38:v1.9.6
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
kubectl uncordon gpu-1
pids=()
talosctl upgrade --nodes 10.0.0.21 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6 &
pids+=($!)
talosctl upgrade --nodes 10.0.0.22 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6 &
pids+=($!)
for pid in "${pids[@]}"; do wait "$pid"; done
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
talosctl upgrade --nodes 10.0.0.23 --image factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6
talosctl health --nodes 10.0.0.11 --wait-timeout 10m

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
talosctl upgrade --nodes 10.0.0.11 --image factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.10.9
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
talosctl upgrade --nodes 10.0.0.12 --image factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.10.9
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
talosctl upgrade --nodes 10.0.0.13 --image factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.10.9
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
# GPU node: move GPU workloads off before the driver extensions change
kubectl drain gpu-1 --ignore-daemonsets --delete-emptydir-data --timeout 10m
talosctl upgrade --nodes 10.0.0.31 --image factory.talos.dev/nocloud-installer/fad91d055be9791728e764d0ef7e2f93085abdee59db71e66c0a519dbee73a38:v1.10.9
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
kubectl uncordon gpu-1
pids=()
talosctl upgrade --nodes 10.0.0.21 --image factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.10.9 &
pids+=($!)
talosctl upgrade --nodes 10.0.0.22 --image factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.10.9 &
pids+=($!)
for pid in "${pids[@]}"; do wait "$pid"; done
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
talosctl upgrade --nodes 10.0.0.23 --image factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.10.9
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
talosctl upgrade-k8s --nodes 10.0.0.11 --to 1.31.4
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
talosctl upgrade-k8s --nodes 10.0.0.11 --to 1.32.4
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
talosctl upgrade-k8s --nodes 10.0.0.11 --to 1.33.6
talosctl health --nodes 10.0.0.11 --wait-timeout 10m
