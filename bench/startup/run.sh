#!/bin/sh
# Benchmark: whole-process start-up of `imgpipe resolve --talos v1.9.x` (warm page
# cache, embedded full-catalog matrix, built-in default site, offline). Prints the
# load, the package-init total and its ten most expensive packages from
# GODEBUG=inittrace=1 (median run of 5), then hyperfine's min/median over RUNS runs.
# With BASE=<git rev> it also builds that revision and interleaves the two (A,B,A,B).
#
#   bench/startup/run.sh [RUNS]            (default 20; the target is median <= 100 ms)
#   BASE=main bench/startup/run.sh 20
set -eu
RUNS=${1:-20}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/startupbench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
command -v hyperfine >/dev/null || { echo "hyperfine is required" >&2; exit 1; }

(cd "$ROOT" && go build -o "$WORK/imgpipe" ./cmd/imgpipe)
cd "$WORK" # no imgpipe.yaml here: the built-in default site
echo "cpu: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

i=0
while [ $i -lt 5 ]; do
	GODEBUG=inittrace=1 ./imgpipe resolve --talos v1.9.x 2>"trace.$i" >/dev/null
	awk '{ s += $5 } END { printf "%.2f\n", s }' "trace.$i" >>init.totals
	i=$((i + 1))
done
echo "package init (ms clock, 5 runs): $(sort -n init.totals | tr '\n' ' ')"
median=$(sort -n init.totals | sed -n 3p)
for f in trace.*; do
	if [ "$(awk '{ s += $5 } END { printf "%.2f\n", s }' "$f")" = "$median" ]; then
		echo "top packages of the median run:"
		awk '{ print $5 " ms  " $2 }' "$f" | sort -rn | head -10
		break
	fi
done

set -- ./imgpipe resolve --talos v1.9.x
if [ -n "${BASE:-}" ]; then
	git -C "$ROOT" worktree add -q --detach "$WORK/base" "$BASE"
	(cd "$WORK/base" && go build -o "$WORK/imgpipe-base" ./cmd/imgpipe)
	git -C "$ROOT" worktree remove --force "$WORK/base"
	hyperfine -N -w 3 -r "$RUNS" --export-json result.json './imgpipe-base resolve --talos v1.9.x' "$*"
else
	hyperfine -N -w 3 -r "$RUNS" --export-json result.json "$*"
fi
# min and median per command (hyperfine prints mean; the target is the median)
python3 -c 'import json; [print("%s: min %.1f ms, median %.1f ms, runs %d" % (r["command"], 1e3*r["min"], 1e3*r["median"], len(r["times"]))) for r in json.load(open("result.json"))["results"]]'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
