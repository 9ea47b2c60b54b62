#!/bin/sh
# Registry mirroring benchmark (issue 17): imgpipe push vs `crane copy` at equal
# concurrency and vs the limit (raw parallel blob GET->PUT), imgpipe warm vs a
# sequential `crane pull` through a pull-through cache, no-op reruns, peak RSS; A/B
# interleaved over -pairs pairs on fresh loopback Debian docker-registry instances, with
# the load average of every sample. Extra arguments go to the Go program, e.g.
#   bench/registry/run.sh -pairs 7 -images 24 -layer-mib 10,12    # bigger
#   bench/registry/run.sh -shared-mib 16                           # shared-layer variant
#   bench/registry/run.sh -profile /tmp/prof                       # + CPU profile of a warm
# Needs docker-registry (apt) and Go. crane is built at the go-containerregistry version
# pinned in go.mod into a temporary directory (or set CRANE=/path/to/crane).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(mktemp -d "${TMPDIR:-/tmp}/imgpipe-registry-bench-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
cd "$root"
command -v /usr/bin/docker-registry >/dev/null || { echo "missing docker-registry: apt-get install -y docker-registry" >&2; exit 1; }
ggcr=$(go list -m -f '{{.Version}}' github.com/google/go-containerregistry)
crane=${CRANE:-}
if [ -z "$crane" ]; then
	GOFLAGS=-mod=mod GOBIN="$bin" go install "github.com/google/go-containerregistry/cmd/crane@$ggcr"
	crane="$bin/crane"
fi
# IMGPIPE_BIN runs a given imgpipe binary instead of building the working tree.
imgpipe=${IMGPIPE_BIN:-"$bin/imgpipe"}
[ -n "${IMGPIPE_BIN:-}" ] || go build -o "$bin/imgpipe" ./cmd/imgpipe
go build -o "$bin/registry-bench" ./bench/registry
"$bin/registry-bench" -imgpipe "$imgpipe" -crane "$crane" "$@"
