package upgrade

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// scriptPrelude holds the helpers every generated script defines. A re-run must be
// safe at any point: each node is read (running Talos version, schematic) before it
// is touched and skipped when at or past the step, so nothing is repeated and nothing
// is ever downgraded (Talos accepts a one-minor downgrade, so replaying an earlier
// hop would issue one).
const scriptPrelude = `
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
`

// WriteScript renders the plan as a bash script that is safe to re-run at any point.
// Every command is rendered from the steps' typed fields (versions, addresses, node
// names, images, durations), each validated and shell-quoted. Before each node's
// upgrade the script reads what the node runs and skips it when it is at or past the
// step; upgrades of a batch run in parallel and a failure waits for the siblings
// before the script stops; each control-plane node's etcd is snapshotted to a dated
// file before it moves; every upgrade-k8s runs with --dry-run first, and only when the
// cluster is not there yet; a drained GPU node is uncordoned only after its NVIDIA
// modules are loaded again. Every talosctl upgrade pins --image to the factory
// installer of the node's profile for that hop.
func WriteScript(w io.Writer, p *Plan) error {
	if err := checkScriptValues(p); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	pr := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	pr("#!/usr/bin/env bash\n")
	pr("# imgpipe upgrade plan (%s path)%s: %d nodes\n", p.Path, clusterSuffix(p.Cluster), p.Nodes)
	pr("# from Talos %s, Kubernetes %s\n", strings.Join(p.From.Talos, ", "), strings.Join(p.From.Kubernetes, ", "))
	pr("# to   Talos %s, Kubernetes %s\n", strings.Join(p.To.Talos, ", "), strings.Join(p.To.Kubernetes, ", "))
	pr("#\n# Review before running. Use talosctl %s or newer, and a kubeconfig for kubectl.\n", lastTalos(p))
	pr("# Safe to re-run after a failure: every node and Kubernetes step is checked first\n")
	pr("# and skipped when done; nothing is downgraded. A failing command stops the script.\n")
	for _, n := range p.Notes {
		pr("# note: %s\n", oneLine(n))
	}
	pr("set -euo pipefail\n")
	bw.WriteString(scriptPrelude)
	pr("HEALTH_TIMEOUT=%s\n", ShellQuote(p.HealthTimeout))
	if len(p.Hops) == 0 {
		pr("\necho 'nothing to do: every node runs the target'\n")
	}
	for _, h := range p.Hops {
		writeScriptHop(bw, p, h)
	}
	return bw.Flush()
}

func writeScriptHop(bw *bufio.Writer, p *Plan, h Hop) {
	pr := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	pr("\n# === hop %d/%d: Talos %s, Kubernetes %s", h.Index, len(p.Hops), h.Talos, h.Kubernetes)
	if h.KubernetesAfter != "" {
		pr(" -> %s", h.KubernetesAfter)
	}
	pr(" ===\n")
	for _, n := range h.Notes {
		pr("# note: %s\n", oneLine(n))
	}
	pr("echo %s\n", ShellQuote(fmt.Sprintf("hop %d/%d: Talos %s", h.Index, len(p.Hops), h.Talos)))
	steps := h.Steps
	for i := 0; i < len(steps); {
		s := steps[i]
		switch s.Action {
		case ActionUpgradeK8s:
			writeK8sStep(pr, s)
		case ActionHealth:
			pr("talosctl health --nodes %s --wait-timeout \"$HEALTH_TIMEOUT\"\n", ShellQuote(s.Address))
		case ActionDrain, ActionUpgrade:
			j := i
			for j < len(steps) && (steps[j].Action == ActionDrain || steps[j].Action == ActionUpgrade) && steps[j].Batch == s.Batch {
				j++
			}
			writeBatch(pr, steps[i:j])
			i = j
			continue
		case ActionUncordon:
			if s.GPU {
				pr("require_nvidia %s %s\n", ShellQuote(s.Node), ShellQuote(s.Address))
			}
			pr("kubectl uncordon %s\n", ShellQuote(s.Node))
		default: // lock, preseed, prewarm: imgpipe commands, quoted when planned; idempotent
			if s.Note != "" {
				pr("# %s\n", oneLine(s.Note))
			}
			pr("%s\n", s.Command)
		}
		i++
	}
}

func writeK8sStep(pr func(string, ...any), s Step) {
	if s.Note != "" {
		pr("# %s\n", oneLine(s.Note))
	}
	v := ShellQuote(s.Kubernetes)
	pr("if needs_k8s %s; then\n", v)
	pr("  talosctl upgrade-k8s --nodes %s --to %s --dry-run\n", ShellQuote(s.Address), v)
	pr("  talosctl upgrade-k8s --nodes %s --to %s\n", ShellQuote(s.Address), v)
	pr("fi\n")
}

// writeBatch renders one batch: drains and upgrades of nodes that need it, the
// upgrades in parallel when there are several, then waits for all of them.
func writeBatch(pr func(string, ...any), run []Step) {
	var ups []Step
	drain := map[string]Step{}
	for _, s := range run {
		if s.Action == ActionDrain {
			drain[s.Node] = s
		} else {
			ups = append(ups, s)
		}
	}
	parallel := len(ups) > 1
	if parallel {
		pr("batch=()\n")
	}
	for _, u := range ups {
		if u.Note != "" {
			pr("# %s: %s\n", u.Node, oneLine(u.Note))
		}
		node, addr := ShellQuote(u.Node), ShellQuote(u.Address)
		pr("if needs_upgrade %s %s %s %s; then\n", node, addr, ShellQuote(u.Talos), ShellQuote(u.Schematic))
		if u.Role == RoleControlPlane {
			pr("  etcd_snapshot %s %s\n", node, addr)
		}
		if d, ok := drain[u.Node]; ok {
			pr("  kubectl drain %s --ignore-daemonsets --delete-emptydir-data --timeout \"$HEALTH_TIMEOUT\"\n", ShellQuote(d.Node))
		}
		cmd := fmt.Sprintf("talosctl upgrade --nodes %s --image %s", addr, ShellQuote(u.Image))
		if u.Preserve {
			cmd += " --preserve"
		}
		if parallel {
			pr("  %s &\n  batch+=(\"$!:\"%s)\n", cmd, node)
		} else {
			pr("  %s\n", cmd)
		}
		pr("fi\n")
	}
	if parallel {
		pr("wait_batch ${batch[@]+\"${batch[@]}\"}\n")
	}
}

var imageRefRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$`)

// checkScriptValues checks the type of every value the script pastes: a plan is
// JSON anyone can edit, and a script is code. Values repeat (a profile's installer,
// a hop's version), so each distinct one is checked once.
func checkScriptValues(p *Plan) error {
	var errs []error
	ok := map[[2]string]bool{}
	check := func(kind, v string, valid func(string) bool) bool {
		k := [2]string{kind, v}
		if r, seen := ok[k]; seen {
			return r
		}
		ok[k] = valid(v)
		return ok[k]
	}
	bad := func(h Hop, s Step, field, v, want string) {
		errs = append(errs, fmt.Errorf("hop %d step %s %s: %s %q is not %s", h.Index, s.Action, s.Node, field, v, want))
	}
	if err := checkDurationString(p.HealthTimeout); err != nil {
		errs = append(errs, err)
	}
	for _, h := range p.Hops {
		for _, s := range h.Steps {
			if s.Node != "" && !validNodeName(s.Node) {
				bad(h, s, "node", s.Node, "a Kubernetes node name")
			}
			if s.Address != "" && !check("address", s.Address, validAddress) {
				bad(h, s, "address", s.Address, "an IP address or host name")
			}
			switch s.Action {
			case ActionUpgrade:
				if !check("talos", s.Talos, validTalosVersion) {
					bad(h, s, "talos", s.Talos, "a Talos version like v1.9.5")
				}
				if !check("image", s.Image, imageRefRE.MatchString) {
					bad(h, s, "image", s.Image, "an image reference")
				}
				if s.Schematic != "" && !check("schematic", s.Schematic, schematicRE.MatchString) {
					bad(h, s, "schematic", s.Schematic, "a schematic ID")
				}
			case ActionUpgradeK8s:
				if _, err := semver.StrictNewVersion(s.Kubernetes); err != nil {
					bad(h, s, "kubernetes", s.Kubernetes, "a Kubernetes version like 1.31.4")
				}
			}
		}
	}
	if len(errs) > 0 {
		return fail.Usage(fmt.Errorf("rendering the script:\n%w", boundedList(errs, 10)))
	}
	return nil
}

func validTalosVersion(s string) bool {
	_, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v"))
	return err == nil && strings.HasPrefix(s, "v")
}

// validNodeName is nodeNameRE as a byte loop (a DNS-1123 subdomain), for speed.
func validNodeName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

var durationRE = regexp.MustCompile(`^([0-9]+[smh])+$`)

func checkDurationString(s string) error {
	if !durationRE.MatchString(s) {
		return fail.Usage(errors.New("health_timeout " + ShellQuote(s) + " is not a duration like 10m or 1h30m"))
	}
	return nil
}

// oneLine keeps a note on one comment line: a newline would end the comment.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}
