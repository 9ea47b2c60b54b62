#!/usr/bin/env bash
# Upload benchmark: imgpipe's streamed ISO upload vs `curl -k -F` to the fake PVE
# (upload/proxmox/pvetest) on loopback TLS, same file, same server, same run.
# Reports wall time, throughput and peak RSS (/usr/bin/time -v) per round and the
# medians. Usage: bench/proxmox/run.sh [SIZE_MIB=1024] [ROUNDS=3]
set -euo pipefail
size_mib=${1:-1024}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'kill "$srv_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

cd "$root"
go build -o "$work/imgpipe" ./cmd/imgpipe
go build -o "$work/fakepve" ./bench/proxmox

iso="$work/talos.iso"
head -c "$((size_mib << 20))" /dev/urandom >"$iso"
sum=$(sha256sum "$iso" | cut -d' ' -f1)
bytes=$(stat -c %s "$iso")

"$work/fakepve" -dir "$work" &
srv_pid=$!
for _ in $(seq 100); do [[ -e "$work/ready" ]] && break; sleep 0.1; done
url=$(cat "$work/url")
# The token reaches imgpipe through the environment, never argv.
IMGPIPE_PROXMOX_TOKEN=$(cat "$work/token")
export IMGPIPE_PROXMOX_TOKEN

schematic=376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba
name="talos-${schematic:0:12}-v1.9.5-nocloud-amd64.iso"
cat >"$work/imgpipe.yaml" <<YAML
version: 1
profiles:
  - name: bench
proxmox:
  url: $url
  caFile: $work/ca.pem
  nodes: [pve1]
  storage: local
  isoMethod: upload
YAML
cat >"$work/lock.json" <<JSON
{
  "schema": "imgpipe.dev/lock/v1",
  "talos": "v1.9.5",
  "kubernetes": {"version": "", "default": "", "min": "", "max_minor": "", "supported": false},
  "factory": "https://factory.talos.dev",
  "matrix": "bench",
  "profiles": [{
    "name": "bench", "platform": "nocloud", "arch": "amd64", "secureboot": false,
    "schematic": {"id": "$schematic", "yaml": ""},
    "extensions": [], "omitted": [], "installer": "",
    "iso": "https://factory.talos.dev/image/$schematic/v1.9.5/nocloud-amd64.iso", "disk_image": "",
    "artifacts": [{"kind": "iso", "url": "https://factory.talos.dev/image/$schematic/v1.9.5/nocloud-amd64.iso",
      "file": "$iso", "size": $bytes, "sha256": "$sum", "sha512": ""}]
  }],
  "catalog": "",
  "core_images": []
}
JSON

# measure TOOL LOG CMD...: runs CMD under /usr/bin/time -v, prints "seconds rss_kib".
measure() {
  local log=$1; shift
  /usr/bin/time -v "$@" >"$log.out" 2>"$log.err"
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log.err")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log.err")
  # wall is [h:]m:ss.ss
  echo "$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }') $rss"
}

delete_volume() {
  curl -sk -o /dev/null -X DELETE -H @"$work/curl-auth.txt" "$url/nodes/pve1/storage/local/content/local:iso/$1"
}

printf 'file: %d MiB (%d bytes), %d rounds, server: pvetest on %s\n' "$size_mib" "$bytes" "$rounds" "$url"
printf '%-8s %-6s %10s %12s %12s\n' tool round seconds MiB/s peak_RSS_MiB
declare -a curl_t imgpipe_t curl_rss imgpipe_rss
for r in $(seq "$rounds"); do
  for tool in curl imgpipe; do
    # alternate which tool goes first so drift in machine load hits both
    if (( r % 2 == 0 )); then tool=$([[ $tool == curl ]] && echo imgpipe || echo curl); fi
    if [[ $tool == curl ]]; then
      read -r t rss < <(measure "$work/curl-$r" curl -sS -k -o /dev/null -H @"$work/curl-auth.txt" \
        -F content=iso -F checksum-algorithm=sha256 -F "checksum=$sum" -F "filename=@$iso;filename=curl-$r.iso" \
        "$url/nodes/pve1/storage/local/upload")
      grep -q UPID "$work/curl-$r.out" 2>/dev/null || true
      curl_t+=("$t"); curl_rss+=("$rss")
    else
      delete_volume "$name"
      read -r t rss < <(measure "$work/imgpipe-$r" \
        "$work/imgpipe" --config "$work/imgpipe.yaml" upload iso --lock "$work/lock.json" -o json)
      grep -q '"action": "uploaded"' "$work/imgpipe-$r.out" || { echo "imgpipe did not upload:"; cat "$work/imgpipe-$r.out" "$work/imgpipe-$r.err"; exit 1; }
      imgpipe_t+=("$t"); imgpipe_rss+=("$rss")
    fi
    printf '%-8s %-6s %10.2f %12.1f %12.1f\n' "$tool" "$r" "$t" "$(echo "$bytes $t" | awk '{print $1/1048576/$2}')" "$(echo "$rss" | awk '{print $1/1024}')"
  done
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ct=$(median "${curl_t[@]}"); it=$(median "${imgpipe_t[@]}")
cr=$(median "${curl_rss[@]}"); ir=$(median "${imgpipe_rss[@]}")
echo "median: curl $ct s ($(echo "$bytes $ct" | awk '{printf "%.1f", $1/1048576/$2}') MiB/s, RSS $(echo "$cr" | awk '{printf "%.1f", $1/1024}') MiB)" \
  "imgpipe $it s ($(echo "$bytes $it" | awk '{printf "%.1f", $1/1048576/$2}') MiB/s, RSS $(echo "$ir" | awk '{printf "%.1f", $1/1024}') MiB)"
echo "imgpipe/curl throughput: $(echo "$ct $it" | awk '{printf "%.3f", $1/$2}') (target >= 0.95); imgpipe peak RSS < 64 MiB: $(echo "$ir" | awk '{print ($1 < 65536) ? "yes" : "no"}')"
