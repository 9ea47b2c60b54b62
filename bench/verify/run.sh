#!/usr/bin/env bash
# End-to-end verify benchmark on loopback: `imgpipe verify` against `cosign verify`
# (when a cosign binary is on PATH or in $COSIGN) on the same N key-signed images in
# one in-memory registry, in the same run. Prints wall time and peak RSS of each.
#   bench/verify/run.sh [N]        (default 50)
# skopeo is not compared: Debian's skopeo is built with sigstore disabled.
set -euo pipefail
n="${1:-50}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
serve_pid=""
cleanup() { [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

(cd "$root" && go build -o "$work/imgpipe" ./cmd/imgpipe && go build -o "$work/serve" ./bench/verify/serve)
mkdir -p "$work/d"
"$work/serve" -n "$n" -dir "$work/d" >"$work/host" &
serve_pid=$!
for _ in $(seq 100); do [ -s "$work/host" ] && break; sleep 0.1; done
[ -s "$work/host" ] || { echo "registry did not start" >&2; exit 1; }

measure() { # label, command...
  local label="$1"; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>"$work/err" || { echo "$label failed:" >&2; cat "$work/err" >&2; return 1; }
  read -r secs kb <"$work/t"
  printf '%-28s %3d images  %6.2f s  %7.1f images/s  peak RSS %6.1f MiB\n' "$label" "$n" "$secs" "$(echo "$n / $secs" | bc -l)" "$(echo "$kb / 1024" | bc -l)"
}

cd "$work/d"
measure "imgpipe verify --jobs 1" "$work/imgpipe" verify --config imgpipe.yaml --lock lock.json --jobs 1 -o json
measure "imgpipe verify --jobs 4" "$work/imgpipe" verify --config imgpipe.yaml --lock lock.json --jobs 4 -o json
cosign="${COSIGN:-$(command -v cosign || true)}"
if [ -n "$cosign" ]; then
  # shellcheck disable=SC2046
  measure "cosign verify (one call)" "$cosign" verify --key key.pub --insecure-ignore-tlog --offline $(cat images.txt)
else
  echo "cosign: not found (set COSIGN=/path/to/cosign)"
fi
