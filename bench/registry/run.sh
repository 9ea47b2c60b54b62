#!/bin/sh
# Registry mirroring benchmark: imgpipe push vs crane copy vs skopeo copy, imgpipe's no-op
# rerun, and imgpipe warm vs pulling each image through a pull-through cache, in one run,
# on loopback Debian docker-registry instances. Re-runnable; extra arguments go to the Go
# program (e.g. -images 20 -layer-mib 8,8 -keep). Needs: docker-registry, skopeo (apt),
# Go. crane is installed at the go-containerregistry version pinned in go.mod.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BENCH_BIN:-"$root/bench/registry/.bin"}
mkdir -p "$bin"
cd "$root"
ggcr=$(go list -m -f '{{.Version}}' github.com/google/go-containerregistry)
[ -x "$bin/crane" ] && "$bin/crane" version 2>/dev/null | grep -q "${ggcr#v}" ||
	GOBIN="$bin" go install "github.com/google/go-containerregistry/cmd/crane@$ggcr"
# IMGPIPE_BIN runs a given imgpipe binary instead of building the working tree.
imgpipe=${IMGPIPE_BIN:-"$bin/imgpipe"}
[ -n "${IMGPIPE_BIN:-}" ] || go build -o "$bin/imgpipe" ./cmd/imgpipe
go build -o "$bin/registry-bench" ./bench/registry
for tool in /usr/bin/docker-registry skopeo; do
	command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y docker-registry skopeo" >&2; exit 1; }
done
exec "$bin/registry-bench" -imgpipe "$imgpipe" -crane "$bin/crane" -skopeo "$(command -v skopeo)" "$@"
