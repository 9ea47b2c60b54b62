#!/bin/sh
# Benchmark: whole-process start-up of `imgpipe resolve --talos v1.9.x` (warm page
# cache, embedded full-catalog matrix, built-in default site, offline). Prints the
# load, the package-init total and its ten most expensive packages from
# GODEBUG=inittrace=1 (median run of 5), then hyperfine's min/median over RUNS runs.
# With BASE=<git rev> it also builds that revision and times the two in interleaved
# pairs (base, new, base, new, ...) instead of running hyperfine.
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

if [ -n "${BASE:-}" ]; then
	# Interleaved pairs (base, new, base, new, ...): both see the same load.
	git -C "$ROOT" worktree add -q --detach "$WORK/base" "$BASE"
	(cd "$WORK/base" && go build -o "$WORK/imgpipe-base" ./cmd/imgpipe)
	git -C "$ROOT" worktree remove --force "$WORK/base"
	python3 - "$RUNS" <<'PY'
import statistics, subprocess, sys, time
runs = int(sys.argv[1])
cmds = {"base": ["./imgpipe-base", "resolve", "--talos", "v1.9.x"], "new": ["./imgpipe", "resolve", "--talos", "v1.9.x"]}
times = {k: [] for k in cmds}
for k, c in cmds.items():  # warm-up
    subprocess.run(c, stdout=subprocess.DEVNULL, check=True)
for _ in range(runs):
    for k, c in cmds.items():
        t = time.perf_counter()
        subprocess.run(c, stdout=subprocess.DEVNULL, check=True)
        times[k].append(1e3 * (time.perf_counter() - t))
for k, v in times.items():
    print("%s: min %.1f ms, median %.1f ms (%d interleaved runs)" % (k, min(v), statistics.median(v), len(v)))
print("ratio new/base: min %.2f, median %.2f" % (min(times["new"]) / min(times["base"]), statistics.median(times["new"]) / statistics.median(times["base"])))
PY
else
	hyperfine -N -w 3 -r "$RUNS" --export-json result.json './imgpipe resolve --talos v1.9.x'
	python3 -c 'import json; [print("%s: min %.1f ms, median %.1f ms, runs %d" % (r["command"], 1e3*r["min"], 1e3*r["median"], len(r["times"]))) for r in json.load(open("result.json"))["results"]]'
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
