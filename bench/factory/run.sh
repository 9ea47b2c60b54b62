#!/bin/sh
# Benchmark: imgpipe's downloader (stream to disk + sha256 + sha512, content-addressed
# cache) vs `curl -s URL | sha256sum`, both fetching the same artifact from the fake
# Image Factory on 127.0.0.1, in the same run. Prints wall time, throughput and peak
# RSS (from /usr/bin/time -v) per round and the best of each.
#
#   bench/factory/run.sh [SIZE_BYTES] [ROUNDS]     (defaults: 1 GiB, 3 rounds)
set -eu
SIZE=${1:-1073741824}
ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/factorybench.XXXXXX")
BIN=$WORK/factorybench
SERVER_PID=
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

(cd "$ROOT" && go build -o "$BIN" ./bench/factory)
"$BIN" serve -size "$SIZE" >"$WORK/url" &
SERVER_PID=$!
i=0
while [ ! -s "$WORK/url" ]; do
	i=$((i + 1)); [ $i -gt 100 ] && { echo "server did not start" >&2; exit 1; }
	sleep 0.1
done
URL=$(cat "$WORK/url")
echo "artifact: $SIZE bytes at $URL (cache on $(df -P "$WORK" | awk 'NR==2{print $1}'))"
echo "cpu: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# time_field FILE FIELD -> value from /usr/bin/time -v output
time_field() { grep "$2" "$1" | sed 's/.*: //'; }
# seconds from "h:mm:ss" or "m:ss.cc"
to_secs() { echo "$1" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }'; }

best_imgpipe=0; best_curl=0; rss_imgpipe=0; rss_curl=0
r=1
while [ $r -le "$ROUNDS" ]; do
	rm -rf "$WORK/cache"; mkdir "$WORK/cache"
	/usr/bin/time -v "$BIN" fetch -cache "$WORK/cache" "$URL" >"$WORK/imgpipe.out" 2>"$WORK/imgpipe.time"
	/usr/bin/time -v sh -c "curl -s '$URL' | sha256sum" >"$WORK/curl.out" 2>"$WORK/curl.time"
	a=$(cut -d' ' -f1 "$WORK/imgpipe.out"); b=$(cut -d' ' -f1 "$WORK/curl.out")
	[ "$a" = "$b" ] || { echo "digest mismatch: imgpipe $a, curl $b" >&2; exit 1; }
	ti=$(to_secs "$(time_field "$WORK/imgpipe.time" 'Elapsed (wall clock)')")
	tc=$(to_secs "$(time_field "$WORK/curl.time" 'Elapsed (wall clock)')")
	ri=$(time_field "$WORK/imgpipe.time" 'Maximum resident'); rc=$(time_field "$WORK/curl.time" 'Maximum resident')
	mi=$(awk -v s="$SIZE" -v t="$ti" 'BEGIN{printf "%.1f", s/t/1e6}')
	mc=$(awk -v s="$SIZE" -v t="$tc" 'BEGIN{printf "%.1f", s/t/1e6}')
	echo "round $r: imgpipe ${ti}s ${mi} MB/s peak RSS ${ri} KiB | curl|sha256sum ${tc}s ${mc} MB/s peak RSS ${rc} KiB | sha256 $a"
	best_imgpipe=$(awk -v a="$best_imgpipe" -v b="$mi" 'BEGIN{print (b>a)?b:a}')
	best_curl=$(awk -v a="$best_curl" -v b="$mc" 'BEGIN{print (b>a)?b:a}')
	rss_imgpipe=$(awk -v a="$rss_imgpipe" -v b="$ri" 'BEGIN{print (b>a)?b:a}')
	rss_curl=$(awk -v a="$rss_curl" -v b="$rc" 'BEGIN{print (b>a)?b:a}')
	r=$((r + 1))
done
ratio=$(awk -v a="$best_imgpipe" -v b="$best_curl" 'BEGIN{printf "%.2f", a/b}')
echo "best: imgpipe $best_imgpipe MB/s (max peak RSS $((rss_imgpipe / 1024)) MiB), curl|sha256sum $best_curl MB/s (max peak RSS $((rss_curl / 1024)) MiB); ratio ${ratio}x"
