// Command registry-bench measures imgpipe's registry mirroring on loopback Debian
// docker-registry instances, honestly enough to compare on a shared machine:
//   - the data set has unique layers by default (-shared-mib adds one base layer shared
//     by every image, as a separate variant);
//   - imgpipe and the other tool run interleaved (A,B,A,B…) for -pairs pairs, each on
//     fresh registries, and the table gives min and median of each plus the ratios;
//   - every sample records the machine's load average when it started;
//   - a limit row measures the fastest these registries move the same bytes here:
//     parallel raw blob GET→PUT with no manifest work, at the best concurrency found;
//   - push is compared with `crane copy` (-crane-par processes at a time, one per image
//     and signature tag), warm with a sequential `crane pull` of every image through a
//     fresh pull-through cache; no-op reruns and peak RSS are reported too.
//
// Every registry sits behind a counting proxy, so requests and bytes are counted the
// same way for every tool. -profile DIR writes a CPU profile of one in-process warm run.
// Run it with bench/registry/run.sh.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
	"github.com/imgpipe/imgpipe/upload/registry/registrytest"
)

type options struct {
	images    int
	platforms int
	layers    string
	sharedMiB int
	jobs      int
	cranePar  int
	pairs     int
	limitConc string
	work      string
	imgpipe   string
	crane     string
	keep      bool
	profile   string
	skip      string
}

func main() {
	var o options
	flag.IntVar(&o.images, "images", 16, "number of images")
	flag.IntVar(&o.platforms, "platforms", 2, "platforms per image (linux/amd64, linux/arm64, ...)")
	flag.StringVar(&o.layers, "layer-mib", "8,8", "unique layer sizes per platform, MiB, comma-separated")
	flag.IntVar(&o.sharedMiB, "shared-mib", 0, "variant: one base layer of this size shared by every image (0: unique layers only)")
	flag.IntVar(&o.jobs, "jobs", 8, "imgpipe --jobs")
	flag.IntVar(&o.cranePar, "crane-par", 8, "crane copy processes at a time (equal concurrency: as many as imgpipe --jobs)")
	flag.IntVar(&o.pairs, "pairs", 5, "interleaved A/B pairs per comparison")
	flag.StringVar(&o.limitConc, "limit-conc", "2,4,8,16", "concurrencies tried for the limit row")
	flag.StringVar(&o.work, "work", "", "work directory (default: a fresh temp dir, removed afterwards)")
	flag.StringVar(&o.imgpipe, "imgpipe", "imgpipe", "imgpipe binary")
	flag.StringVar(&o.crane, "crane", "crane", "crane binary (github.com/google/go-containerregistry/cmd/crane@v0.22.1)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.StringVar(&o.profile, "profile", "", "directory for a CPU profile of one in-process warm run")
	flag.StringVar(&o.skip, "skip", "", "comma-separated parts to skip: push, warm, limit, trigger")
	flag.Parse()
	if o.pairs < 1 || o.jobs < 1 || o.cranePar < 1 {
		fmt.Fprintln(os.Stderr, "registry-bench: -pairs, -jobs and -crane-par must be >= 1")
		os.Exit(2)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "registry-bench:", err)
		os.Exit(1)
	}
}

// sample is one timed run.
type sample struct {
	Run        string  `json:"run"`
	Pair       int     `json:"pair"`
	Seconds    float64 `json:"seconds"`
	Load1      float64 `json:"load1"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	Requests   int64   `json:"requests"`
	UpRequests int64   `json:"upstream_requests"`
	UpBytes    int64   `json:"upstream_bytes"`
	DstBytes   int64   `json:"mirror_bytes"`
	// ToolCPU is the user+sys CPU of the tool's processes; RegistryCPU that of the
	// upstream and the mirror or cache registry processes during the sample.
	ToolCPU     float64 `json:"tool_cpu_s"`
	RegistryCPU float64 `json:"registry_cpu_s"`
	UpCPU       float64 `json:"upstream_cpu_s"`
	// HarnessCPU is this process's CPU during the sample: the counting proxies, which
	// every byte of every tool passes through, and the limit row's own client.
	HarnessCPU float64 `json:"harness_cpu_s"`
	Check      string  `json:"check"`
	// Kinds counts requests by side, method, kind and status ("up GET blob 200").
	Kinds map[string]int64 `json:"kinds,omitempty"`
}

type image struct {
	*registrytest.Image
}

// ublob is a unique blob and a repository of the upstream that holds it.
type ublob struct {
	repo string
	registrytest.Blob
}

// bench is the state of one benchmark run.
type bench struct {
	o        options
	work     string
	upC      *counter
	upHost   string // the upstream registry itself, behind upC
	images   []image
	lockPath string
	total    int64
	unique   []ublob
	sigTags  int
	samples  []sample
	triggers []string // the trigger part's report lines
}

// Names of the runs, as they appear in the table.
const (
	runPush      = "imgpipe mirror (push)"
	runPushNoop  = "imgpipe mirror (push, no-op rerun)"
	runCrane     = "crane copy (parallel)"
	runLimit     = "limit: raw blob GET→PUT"
	runWarm      = "imgpipe mirror (warm)"
	runWarmNoop  = "imgpipe mirror (warm, rerun with journal)"
	runCranePull = "crane pull through cache (sequential)"
)

func run(ctx context.Context, o options) error {
	for _, bin := range []string{o.imgpipe, o.crane, registrytest.Binary} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("need %s: %w", bin, err)
		}
	}
	b := &bench{o: o, work: o.work}
	if b.work == "" {
		var err error
		if b.work, err = os.MkdirTemp("", "imgpipe-registry-bench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(b.work)
		}
	} else if err := os.RemoveAll(b.work); err != nil {
		return err
	}
	up, upC, stop, err := b.fresh(ctx, "upstream", "")
	if err != nil {
		return err
	}
	defer stop()
	b.upC, b.upHost = upC, up.Host
	if err := b.seed(ctx, up.Host); err != nil {
		return err
	}
	bestConc, err := b.measureAll(ctx)
	if err != nil {
		return err
	}
	b.print(os.Stdout, bestConc)
	for _, l := range b.triggers {
		fmt.Fprintln(os.Stdout, l)
	}
	raw, _ := json.MarshalIndent(b.samples, "", "  ")
	out := filepath.Join(filepath.Dir(b.work), filepath.Base(b.work)+"-samples.json")
	if o.keep || o.work != "" {
		out = filepath.Join(b.work, "samples.json")
	}
	fmt.Fprintf(os.Stderr, "samples written to %s\n", out)
	return os.WriteFile(out, raw, 0o644)
}

// measureAll runs every part not skipped: the limit search, the interleaved push and
// warm pairs, the trigger costs and the profiles. It returns the limit's concurrency.
func (b *bench) measureAll(ctx context.Context) (int, error) {
	skip := func(part string) bool { return slices.Contains(strings.Split(b.o.skip, ","), part) }
	bestConc := 0
	if !skip("limit") {
		var err error
		if bestConc, err = b.searchLimit(ctx); err != nil {
			return 0, err
		}
	}
	for pair := 1; pair <= b.o.pairs && !skip("push"); pair++ {
		steps := []func() error{
			func() error { return b.pushImgpipe(ctx, pair) },
			func() error { return b.pushCrane(ctx, pair) },
		}
		if bestConc > 0 {
			steps = append(steps, func() error { return b.limit(ctx, pair, bestConc, runLimit) })
		}
		if err := interleave(pair, steps); err != nil {
			return 0, err
		}
	}
	for pair := 1; pair <= b.o.pairs && !skip("warm"); pair++ {
		if err := interleave(pair, []func() error{
			func() error { return b.warmImgpipe(ctx, pair) },
			func() error { return b.pullCrane(ctx, pair) },
		}); err != nil {
			return 0, err
		}
	}
	if !skip("trigger") {
		if err := b.triggerCost(ctx); err != nil {
			return 0, err
		}
	}
	if b.o.profile != "" {
		if err := b.profileWarm(ctx); err != nil {
			return 0, err
		}
		if err := b.profilePush(ctx); err != nil {
			return 0, err
		}
	}
	return bestConc, nil
}

// interleave runs one pair's steps, in reverse order every other pair, so drift in the
// machine's load hits every tool alike.
func interleave(pair int, steps []func() error) error {
	if pair%2 == 0 {
		slices.Reverse(steps)
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// fresh starts a registry (a pull-through cache of remote when set) behind a counting
// proxy; stop ends both and removes its storage, so samples do not fill the disk.
func (b *bench) fresh(ctx context.Context, name, remote string) (*registrytest.Instance, *counter, func(), error) {
	root := filepath.Join(b.work, name)
	os.RemoveAll(root)
	cfg := registrytest.Config{Root: root, RemoteURL: remote}
	if b.o.profile != "" && (name == "upstream" || strings.HasPrefix(name, "profile-")) {
		// Serve the registry's own pprof, to profile it during the profiled runs.
		var err error
		if cfg.DebugAddr, err = registrytest.FreeAddr(); err != nil {
			return nil, nil, nil, err
		}
	}
	inst, err := registrytest.Start(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := newCounter(inst.URL())
	if err != nil {
		inst.Stop()
		return nil, nil, nil, err
	}
	c.pid, c.debug = inst.Pid(), cfg.DebugAddr
	stop := func() {
		c.srv.Close()
		inst.Stop()
		if !b.o.keep {
			os.RemoveAll(root)
		}
	}
	return inst, c, stop, nil
}

func (b *bench) seed(ctx context.Context, upHost string) error {
	var layers []int64
	for _, s := range strings.Split(b.o.layers, ",") {
		mib, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("-layer-mib %q: %w", b.o.layers, err)
		}
		layers = append(layers, mib<<20)
	}
	plats := []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x"}[:min(b.o.platforms, 4)]
	var shared []int64
	if b.o.sharedMiB > 0 {
		shared = []int64{int64(b.o.sharedMiB) << 20}
	}
	fmt.Fprintf(os.Stderr, "seeding %d images on %s ...\n", b.o.images, upHost)
	t0 := time.Now()
	seeder := &registrytest.Seeder{Host: upHost}
	seen := map[string]bool{}
	for i := 0; i < b.o.images; i++ {
		im, err := seeder.Seed(ctx, registrytest.Spec{
			Repo: fmt.Sprintf("bench/app-%02d", i), Tag: "v1.0." + fmt.Sprint(i), Platforms: plats,
			Shared: shared, SharedSeed: 42, Layers: layers, Seed: uint64(1000 + i), Sign: i%2 == 0,
		})
		if err != nil {
			return err
		}
		for _, bl := range im.Blobs {
			if !seen[bl.Digest] {
				b.total += bl.Size
				b.unique = append(b.unique, ublob{repo: im.Repo, Blob: bl})
			}
			seen[bl.Digest] = true
		}
		b.sigTags += len(im.Signatures)
		b.images = append(b.images, image{im})
	}
	fmt.Fprintf(os.Stderr, "seeded %d images, %d signature tags, %d unique blobs, %.2f GiB in %.1fs\n",
		len(b.images), b.sigTags, len(b.unique), float64(b.total)/(1<<30), time.Since(t0).Seconds())
	lock := &site.Lock{Schema: site.LockSchema, Talos: "v1.9.6"}
	for _, im := range b.images {
		lock.CoreImages = append(lock.CoreImages, site.Image{Role: "bench", Ref: im.Ref(b.upC.host), Digest: im.Digest})
	}
	b.lockPath = filepath.Join(b.work, "imgpipe.lock.json")
	return site.WriteLock(b.lockPath, lock)
}

// measure times f and records a sample with the load average, the requests and bytes
// both counters saw, and check's verdict.
func (b *bench) measure(name string, pair int, dst *counter, f func() (float64, error), check func() string) error {
	b.upC.reset()
	dst.reset()
	load := load1()
	upCPU0 := procCPU(b.upC.pid)
	regCPU0 := upCPU0 + procCPU(dst.pid)
	fmt.Fprintf(os.Stderr, "pair %d: %s (load %.1f) ...", pair, name, load)
	t := time.Now()
	ru0, self0 := childCPU(), selfCPU()
	rss, err := f()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	s := sample{Run: name, Pair: pair, Seconds: time.Since(t).Seconds(), Load1: load, PeakRSSMiB: rss,
		ToolCPU: childCPU() - ru0, RegistryCPU: procCPU(b.upC.pid) + procCPU(dst.pid) - regCPU0, UpCPU: procCPU(b.upC.pid) - upCPU0, HarnessCPU: selfCPU() - self0,
		Requests: b.upC.requests.Load() + dst.requests.Load(), UpRequests: b.upC.requests.Load(),
		UpBytes: b.upC.bytes.Load(), DstBytes: dst.bytes.Load(), Kinds: map[string]int64{}}
	b.upC.kindsInto(s.Kinds, "up")
	dst.kindsInto(s.Kinds, "mirror")
	if check != nil {
		s.Check = check()
	}
	fmt.Fprintf(os.Stderr, " %.2fs, CPU tool %.2fs registries %.2fs, %d requests, %s\n", s.Seconds, s.ToolCPU, s.RegistryCPU, s.Requests, s.Check)
	b.samples = append(b.samples, s)
	return nil
}

// procCPU is a process's user+sys CPU seconds so far (/proc/PID/stat, 100 Hz ticks).
func procCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}

// childCPU is the user+sys CPU seconds of this process's waited-for children.
func childCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// selfCPU is the user+sys CPU seconds of this process so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func load1() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
	return f
}

// exec runs cmds par at a time and returns their largest peak RSS in MiB.
func (b *bench) exec(ctx context.Context, cmds [][]string, par int) (float64, error) {
	_, rss, err := runAll(ctx, b.work, cmds, par)
	return rss, err
}

func (b *bench) config(name, mirror, mode string) (string, error) {
	p := filepath.Join(b.work, name+".yaml")
	cfg := fmt.Sprintf("version: 1\nprofiles:\n  - name: bench\nregistries:\n  mirrors:\n    %q:\n      endpoint: http://%s\n      mode: %s\n", b.upC.host, mirror, mode)
	return p, os.WriteFile(p, []byte(cfg), 0o644)
}

func (b *bench) imgpipeCmd(cfg string, extra ...string) [][]string {
	return [][]string{append([]string{b.o.imgpipe, "mirror", "--lock", b.lockPath, "--config", cfg, "-o", "json", "--jobs", fmt.Sprint(b.o.jobs)}, extra...)}
}

func (b *bench) pushImgpipe(ctx context.Context, pair int) error {
	m, mc, stop, err := b.fresh(ctx, "mirror-imgpipe", "")
	if err != nil {
		return err
	}
	defer stop()
	cfg, err := b.config("push", mc.host, "push")
	if err != nil {
		return err
	}
	cmd := b.imgpipeCmd(cfg, "--journal", "off")
	if err := b.measure(runPush, pair, mc, func() (float64, error) { return b.exec(ctx, cmd, 1) }, b.checkTags(m.Host)); err != nil {
		return err
	}
	return b.measure(runPushNoop, pair, mc, func() (float64, error) { return b.exec(ctx, cmd, 1) }, b.checkTags(m.Host))
}

func (b *bench) pushCrane(ctx context.Context, pair int) error {
	m, mc, stop, err := b.fresh(ctx, "mirror-crane", "")
	if err != nil {
		return err
	}
	defer stop()
	var cmds [][]string
	for _, im := range b.images {
		for _, tag := range append([]string{im.Tag}, im.Signatures...) {
			cmds = append(cmds, []string{b.o.crane, "copy", b.upC.host + "/" + im.Repo + ":" + tag, mc.host + "/" + im.Repo + ":" + tag})
		}
	}
	return b.measure(runCrane, pair, mc, func() (float64, error) { return b.exec(ctx, cmds, b.o.cranePar) }, b.checkTags(m.Host))
}

func (b *bench) warmImgpipe(ctx context.Context, pair int) error {
	c, cc, stop, err := b.fresh(ctx, "cache-imgpipe", "http://"+b.upC.host)
	if err != nil {
		return err
	}
	defer stop()
	cfg, err := b.config("warm", cc.host, "warm")
	if err != nil {
		return err
	}
	journal := filepath.Join(b.work, fmt.Sprintf("warm-journal-%d.json", pair))
	cmd := b.imgpipeCmd(cfg, "--journal", journal)
	if err := b.measure(runWarm, pair, cc, func() (float64, error) { return b.exec(ctx, cmd, 1) }, b.checkKept(c.Host, true)); err != nil {
		return err
	}
	return b.measure(runWarmNoop, pair, cc, func() (float64, error) { return b.exec(ctx, cmd, 1) }, b.checkKept(c.Host, true))
}

// pullCrane pulls every image (all platforms) and its signature tags through a fresh
// cache, one at a time, as a node or a script pre-seeding by hand would.
func (b *bench) pullCrane(ctx context.Context, pair int) error {
	c, cc, stop, err := b.fresh(ctx, "cache-crane", "http://"+b.upC.host)
	if err != nil {
		return err
	}
	defer stop()
	dir := filepath.Join(b.work, "pulled")
	var cmds [][]string
	for i, im := range b.images {
		for j, tag := range append([]string{im.Tag}, im.Signatures...) {
			cmds = append(cmds, []string{b.o.crane, "pull", "--format", "oci", "--platform", "all",
				cc.host + "/" + im.Repo + ":" + tag, filepath.Join(dir, fmt.Sprintf("%d-%d", i, j))})
		}
	}
	defer os.RemoveAll(dir)
	return b.measure(runCranePull, pair, cc, func() (float64, error) { return b.exec(ctx, cmds, 1) }, b.checkKept(c.Host, true))
}

// searchLimit tries each concurrency once and returns the fastest.
func (b *bench) searchLimit(ctx context.Context) (int, error) {
	best, bestS := 0, 0.0
	for _, s := range strings.Split(b.o.limitConc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return 0, fmt.Errorf("-limit-conc %q: bad concurrency %q", b.o.limitConc, s)
		}
		if err := b.limit(ctx, 0, n, fmt.Sprintf("limit search: %d streams", n)); err != nil {
			return 0, err
		}
		if sec := b.samples[len(b.samples)-1].Seconds; best == 0 || sec < bestS {
			best, bestS = n, sec
		}
	}
	return best, nil
}

// limit streams every unique blob from the upstream into a fresh plain registry with
// conc parallel GET→POST→PUT pipes: no manifests, no existence checks, no retries.
func (b *bench) limit(ctx context.Context, pair, conc int, name string) error {
	_, mc, stop, err := b.fresh(ctx, "mirror-limit", "")
	if err != nil {
		return err
	}
	defer stop()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = time.Minute
	client := &http.Client{Transport: tr, Timeout: 10 * time.Minute}
	defer tr.CloseIdleConnections()
	return b.measure(name, pair, mc, func() (float64, error) {
		work := make(chan ublob)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for bl := range work {
					if err := copyBlob(ctx, client, b.upC.host, mc.host, "bench/limit", bl); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			}()
		}
		for _, bl := range b.unique {
			work <- bl
		}
		close(work)
		wg.Wait()
		return 0, errors.Join(errs...)
	}, func() string { return fmt.Sprintf("%d blobs, %d streams", len(b.unique), conc) })
}

func copyBlob(ctx context.Context, c *http.Client, from, to, repo string, bl ublob) error {
	// Blobs sit in the repositories of the seeded images; distribution serves any
	// repository's blob by digest only where it is linked, so read it from where it is.
	src, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+from+"/v2/"+bl.repo+"/blobs/"+bl.Digest, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(src)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", src.URL, resp.Status)
	}
	post, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+to+"/v2/"+repo+"/blobs/uploads/", nil)
	pr, err := c.Do(post)
	if err != nil {
		return err
	}
	pr.Body.Close()
	loc, err := pr.Request.URL.Parse(pr.Header.Get("Location"))
	if err != nil || pr.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST upload: %s %v", pr.Status, err)
	}
	q := loc.Query()
	q.Set("digest", bl.Digest)
	loc.RawQuery = q.Encode()
	put, _ := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), resp.Body)
	put.ContentLength = bl.Size
	put.Header.Set("Content-Type", "application/octet-stream")
	r2, err := c.Do(put)
	if err != nil {
		return err
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT blob: %s", r2.Status)
	}
	return nil
}

// profileWarm warms a fresh cache in-process under the CPU profiler and writes the
// profile and the run's request counts to the -profile directory.
func (b *bench) profileWarm(ctx context.Context) error {
	// The cache reads the upstream directly and imgpipe the cache directly: the
	// counting proxies run in this process and would fill the profile.
	cache, cc, stop, err := b.fresh(ctx, "profile-warm", "http://"+b.upHost)
	if err != nil {
		return err
	}
	defer stop()
	ps, err := b.placements("http://"+cache.Host, "warm")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.o.profile, 0o755); err != nil {
		return err
	}
	p, err := b.profiledRun(ctx, "warm", "cache", cache, cc, ps)
	if err != nil {
		return err
	}
	summary := fmt.Sprintf("profiled warm (in-process, no counting proxies): wall %.2fs, imgpipe CPU %.2fs (user+sys), cache+upstream registries CPU %.2fs, load %.1f, GOMAXPROCS %d\n"+
		"requests by imgpipe %d (to the cache, and to the upstream for signature tags), bytes read by imgpipe %s MiB; blobs moved %d, skipped %d, retries %d\n",
		p.wall.Seconds(), p.cpu, p.regCPU, load1(), runtime.GOMAXPROCS(0), p.rep.Totals.Requests, mib(p.rep.Totals.BytesRead),
		p.rep.Totals.BlobsMoved, p.rep.Totals.BlobsSkipped, p.rep.Totals.Retries)
	fmt.Fprint(os.Stderr, summary)
	if err := os.WriteFile(filepath.Join(b.o.profile, "warm.txt"), []byte(summary+p.top), 0o644); err != nil {
		return err
	}
	return b.profileCranePull(ctx)
}

// profileCranePull profiles the registries during a sequential crane pull through a
// fresh cache, for comparison with the warm profile: the same upstream and cache work,
// asked for another way.
func (b *bench) profileCranePull(ctx context.Context) error {
	cache, cc, stop, err := b.fresh(ctx, "profile-crane-pull", "http://"+b.upHost)
	if err != nil {
		return err
	}
	defer stop()
	dir := filepath.Join(b.work, "pulled-profile")
	defer os.RemoveAll(dir)
	var cmds [][]string
	for i, im := range b.images {
		for j, tag := range append([]string{im.Tag}, im.Signatures...) {
			cmds = append(cmds, []string{b.o.crane, "pull", "--format", "oci", "--platform", "all",
				cache.Host + "/" + im.Repo + ":" + tag, filepath.Join(dir, fmt.Sprintf("%d-%d", i, j))})
		}
	}
	regCPU0 := procCPU(cache.Pid()) + procCPU(b.upC.pid)
	var wall time.Duration
	var runErr error
	top, err := b.registryProfiles(ctx, "crane-pull", "cache", []*counter{b.upC, cc}, func() {
		t := time.Now()
		_, runErr = b.exec(ctx, cmds, 1)
		wall = time.Since(t)
	})
	if err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("profiled crane pull: %w", runErr)
	}
	summary := fmt.Sprintf("profiled sequential crane pull (no counting proxies): wall %.2fs, cache+upstream registries CPU %.2fs, load %.1f\n",
		wall.Seconds(), procCPU(cache.Pid())+procCPU(b.upC.pid)-regCPU0, load1())
	fmt.Fprint(os.Stderr, summary)
	return os.WriteFile(filepath.Join(b.o.profile, "crane-pull.txt"), []byte(summary+top), 0o644)
}

// registryProfiles CPU-profiles the registry processes behind cs (the upstream, then
// dst: the cache or the mirror), through their debug pprof endpoints, while run runs;
// writes LABEL-upstream.cpu.pprof and LABEL-DST.cpu.pprof to the -profile directory, and returns each one's top functions (go tool pprof -top).
// A registry profile covers a fixed span, so it is asked for the longest warm or pull
// sample seen plus a margin; the registries are idle for the rest of it, which a CPU
// profile does not count.
func (b *bench) registryProfiles(ctx context.Context, label, dst string, cs []*counter, run func()) (string, error) {
	secs := 10.0
	for _, s := range b.samples {
		if s.Run == runWarm || s.Run == runCranePull || s.Run == runPush {
			secs = max(secs, s.Seconds)
		}
	}
	names := []string{"upstream", dst}
	files := make([]string, len(cs))
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		files[i] = filepath.Join(b.o.profile, label+"-"+names[i]+".cpu.pprof")
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fetchProfile(ctx, c.debug, int(secs)+2, files[i])
		}()
	}
	time.Sleep(200 * time.Millisecond) // let both profiles start before the run
	run()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("profiling the registries: %w", err)
	}
	var top strings.Builder
	for i, f := range files {
		out, err := pprofTop(ctx, names[i]+" registry, "+label, f)
		if err != nil {
			return "", err
		}
		top.WriteString(out)
	}
	return top.String(), nil
}

// pprofTop is `go tool pprof -top` of a profile, headed by what it is.
func pprofTop(ctx context.Context, what, path string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof %s: %w\n%s", path, err, out)
	}
	return fmt.Sprintf("\n%s (%s):\n%s", what, path, out), nil
}

// profilePush pushes into a fresh mirror in-process under the CPU profiler, with the
// upstream and mirror registries profiled too, and writes push.txt: where the CPU of a
// push goes, imgpipe's own and the registries'.
func (b *bench) profilePush(ctx context.Context) error {
	mirror, mc, stop, err := b.fresh(ctx, "profile-push", "")
	if err != nil {
		return err
	}
	defer stop()
	ps, err := b.placements("http://"+mirror.Host, "push")
	if err != nil {
		return err
	}
	p, err := b.profiledRun(ctx, "push", "mirror", mirror, mc, ps)
	if err != nil {
		return err
	}
	summary := fmt.Sprintf("profiled push (in-process, no counting proxies): wall %.2fs, imgpipe CPU %.2fs (user+sys), upstream+mirror registries CPU %.2fs, load %.1f; requests %d, blobs moved %d\n",
		p.wall.Seconds(), p.cpu, p.regCPU, load1(), p.rep.Totals.Requests, p.rep.Totals.BlobsMoved)
	fmt.Fprint(os.Stderr, summary)
	return os.WriteFile(filepath.Join(b.o.profile, "push.txt"), []byte(summary+p.top), 0o644)
}

// profiled is one in-process run under the profilers.
type profiled struct {
	rep         *registry.Report
	wall        time.Duration
	cpu, regCPU float64 // seconds: imgpipe's (this process's), the two registries'
	top         string  // the top functions of imgpipe's profile and of each registry's
}

// profiledRun runs imgpipe in-process on ps under the CPU profiler (LABEL.cpu.pprof in
// the -profile directory) while the upstream and dst (the registry behind c) are
// profiled too (see registryProfiles).
func (b *bench) profiledRun(ctx context.Context, label, dst string, reg *registrytest.Instance, c *counter, ps []registry.Placement) (*profiled, error) {
	f, err := os.Create(filepath.Join(b.o.profile, label+".cpu.pprof"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := &profiled{}
	regCPU0, self0 := procCPU(reg.Pid())+procCPU(b.upC.pid), selfCPU()
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, err
	}
	var runErr error
	regTop, err := b.registryProfiles(ctx, label, dst, []*counter{b.upC, c}, func() {
		t := time.Now()
		p.rep, runErr = registry.New(registry.WithJobs(b.o.jobs)).Run(ctx, ps)
		p.wall = time.Since(t)
	})
	pprof.StopCPUProfile()
	p.cpu, p.regCPU = selfCPU()-self0, procCPU(reg.Pid())+procCPU(b.upC.pid)-regCPU0
	if err != nil {
		return nil, err
	}
	if runErr != nil {
		return nil, fmt.Errorf("profiled %s: %w", label, runErr)
	}
	own, err := pprofTop(ctx, "imgpipe, "+label, f.Name())
	if err != nil {
		return nil, err
	}
	p.top = own + regTop
	return p, nil
}

// placements places the bench lock's images on endpoint in mode, as imgpipe mirror does,
// with the upstream addressed directly: the counting proxy runs in this process and would
// fill an in-process profile.
func (b *bench) placements(endpoint, mode string) ([]registry.Placement, error) {
	lock, err := site.ReadLock(b.lockPath)
	if err != nil {
		return nil, err
	}
	for i := range lock.CoreImages {
		lock.CoreImages[i].Ref = strings.Replace(lock.CoreImages[i].Ref, b.upC.host, b.upHost, 1)
	}
	set, err := registry.ImageSet(lock, nil)
	if err != nil {
		return nil, err
	}
	em, err := registry.NewEndpointMap(site.RegistryConfig{Mirrors: map[string]site.MirrorConfig{b.upHost: {Endpoint: endpoint, Mode: mode}}})
	if err != nil {
		return nil, err
	}
	return registry.Place(set, em)
}

func fetchProfile(ctx context.Context, addr string, secs int, path string) error {
	if addr == "" {
		return fmt.Errorf("%s: registry started without a debug address", path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile from %s: %s", addr, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b *bench) checkTags(host string) func() string {
	return func() string {
		bad := 0
		for _, im := range b.images {
			if d, _ := headDigest(host, im.Repo, im.Tag); d != im.Digest {
				bad++
			}
			for _, s := range im.Signatures {
				if d, _ := headDigest(host, im.Repo, s); d == "" {
					bad++
				}
			}
		}
		if bad > 0 {
			return fmt.Sprintf("FAIL: %d tags missing or with another digest", bad)
		}
		return fmt.Sprintf("ok: %d tags + %d signature tags", len(b.images), b.sigTags)
	}
}

func (b *bench) checkKept(host string, withSigs bool) func() string {
	return func() string {
		kept, all := 0, 0
		for _, im := range b.images {
			for _, bl := range im.Blobs[:blobCount(im, withSigs)] {
				all++
				if ok, _ := servedLocally(host, im.Repo, bl.Digest); ok {
					kept++
				}
			}
		}
		if kept < all {
			return fmt.Sprintf("FAIL: cache holds %d of %d blob links", kept, all)
		}
		return fmt.Sprintf("ok: cache holds %d of %d blob links", kept, all)
	}
}

// counter is a reverse proxy in front of one registry that counts requests and bytes
// in both directions.
type counter struct {
	pid      int    // the registry process behind it
	debug    string // its pprof address, when profiled
	host     string
	requests atomic.Int64
	bytes    atomic.Int64
	srv      *http.Server

	mu    sync.Mutex
	kinds map[string]int64 // "GET blob 200" -> requests
}

// kindOf names a request by method, what it addresses, and the status it got; a blob
// GET with a Range header is "GET blob(range)".
func kindOf(r *http.Request, status int) string {
	p := r.URL.Path
	k := "other"
	switch {
	case p == "/v2/" || p == "/v2":
		k = "ping"
	case strings.Contains(p, "/manifests/"):
		k = "manifest"
	case strings.Contains(p, "/blobs/uploads/"):
		k = "upload"
		if r.URL.Query().Get("mount") != "" {
			k = "upload(mount)"
		}
	case strings.Contains(p, "/blobs/"):
		k = "blob"
		if r.Header.Get("Range") != "" {
			k = "blob(range)"
		}
	case strings.Contains(p, "/referrers/"):
		k = "referrers"
	}
	return fmt.Sprintf("%s %s %d", r.Method, k, status)
}

func (c *counter) count(r *http.Request, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kinds[kindOf(r, status)]++
}

func (c *counter) kindsInto(m map[string]int64, side string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, n := range c.kinds {
		m[side+" "+k] += n
	}
}

func newCounter(target string) (*counter, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &counter{host: l.Addr().String(), kinds: map[string]int64{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	rp.Transport = tr
	rp.ModifyResponse = func(resp *http.Response) error {
		// Location headers name the registry; rewrite them to the proxy so clients stay on it.
		if loc := resp.Header.Get("Location"); loc != "" {
			resp.Header.Set("Location", strings.Replace(loc, u.Host, c.host, 1))
		}
		resp.Body = &countBody{ReadCloser: resp.Body, n: &c.bytes}
		c.count(resp.Request, resp.StatusCode)
		return nil
	}
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		c.count(r, http.StatusBadGateway)
		w.WriteHeader(http.StatusBadGateway)
	}
	c.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		if r.Body != nil {
			r.Body = &countBody{ReadCloser: r.Body, n: &c.bytes}
		}
		rp.ServeHTTP(w, r)
	})}
	go c.srv.Serve(l)
	return c, nil
}

func (c *counter) reset() {
	c.requests.Store(0)
	c.bytes.Store(0)
	c.mu.Lock()
	c.kinds = map[string]int64{}
	c.mu.Unlock()
}

type countBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// blobCount is how many of im's blobs belong to the image itself (Seed lists the
// signature blobs last, two per signature tag).
func blobCount(im image, withSigs bool) int {
	if withSigs {
		return len(im.Blobs)
	}
	return len(im.Blobs) - 2*len(im.Signatures)
}

// runAll runs the commands, par at a time, and returns how many ran and the largest
// peak RSS among them in MiB.
func runAll(ctx context.Context, dir string, cmds [][]string, par int) (int, float64, error) {
	var (
		mu   sync.Mutex
		peak float64
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, par)
	)
	for _, c := range cmds {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cmd := exec.CommandContext(ctx, c[0], c[1:]...)
			cmd.Dir = dir
			cmd.Stdout = io.Discard
			var stderr strings.Builder
			cmd.Stderr = &stderr
			cmd.Env = append(os.Environ(), "HOME="+dir, "DOCKER_CONFIG="+filepath.Join(dir, "docker"))
			err := cmd.Run()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w\n%s", strings.Join(c, " "), err, stderr.String()))
				return
			}
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				peak = max(peak, float64(ru.Maxrss)/1024)
			}
		}()
	}
	wg.Wait()
	return len(cmds), peak, errors.Join(errs...)
}

func headDigest(host, repo, ref string) (string, error) {
	req, _ := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", registrytest.OCIIndex+", "+registrytest.OCIManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil
	}
	return resp.Header.Get("Docker-Content-Digest"), nil
}

// servedLocally asks for one byte: distribution answers 206 only from its own storage.
func servedLocally(host, repo, digest string) (bool, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/blobs/"+digest, nil)
	req.Header.Set("Range", "bytes=0-0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusPartialContent, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

// stats of one run over its samples.
type stats struct {
	n                 int
	min, median, max  float64
	load, rss         float64 // median load, max RSS
	toolCPU, regCPU   float64 // medians
	harnessCPU        float64 // median
	requests, upReq   int64   // medians
	upBytes, dstBytes int64   // medians
	checks            string
}

func (b *bench) stats(name string) (stats, bool) {
	var ss []sample
	for _, s := range b.samples {
		if s.Run == name {
			ss = append(ss, s)
		}
	}
	if len(ss) == 0 {
		return stats{}, false
	}
	st := stats{n: len(ss)}
	secs := make([]float64, len(ss))
	loads := make([]float64, len(ss))
	var req, upReq, upB, dstB []int64
	var tcpu, rcpu, hcpu []float64
	checks := map[string]bool{}
	for i, s := range ss {
		secs[i], loads[i] = s.Seconds, s.Load1
		req, upReq = append(req, s.Requests), append(upReq, s.UpRequests)
		upB, dstB = append(upB, s.UpBytes), append(dstB, s.DstBytes)
		st.rss = max(st.rss, s.PeakRSSMiB)
		tcpu, rcpu = append(tcpu, s.ToolCPU), append(rcpu, s.RegistryCPU)
		hcpu = append(hcpu, s.HarnessCPU)
		checks[s.Check] = true
	}
	st.min, st.median, st.max = slices.Min(secs), median(secs), slices.Max(secs)
	st.load = median(loads)
	st.toolCPU, st.regCPU, st.harnessCPU = median(tcpu), median(rcpu), median(hcpu)
	st.requests, st.upReq, st.upBytes, st.dstBytes = medianInt(req), medianInt(upReq), medianInt(upB), medianInt(dstB)
	for c := range checks {
		if strings.HasPrefix(c, "FAIL") || st.checks == "" {
			st.checks = c
		}
	}
	return st, true
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianInt(xs []int64) int64 {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return int64(median(f))
}

// pairRatios are a/b per pair, for the pairs where both ran.
func (b *bench) pairRatios(a, bn string) []float64 {
	at := map[int]float64{}
	for _, s := range b.samples {
		if s.Run == a {
			at[s.Pair] = s.Seconds
		}
	}
	var rs []float64
	for _, s := range b.samples {
		if s.Run == bn {
			if x, ok := at[s.Pair]; ok && s.Seconds > 0 {
				rs = append(rs, x/s.Seconds)
			}
		}
	}
	return rs
}

func (b *bench) print(w io.Writer, bestConc int) {
	o := b.o
	shared := "unique layers only"
	if o.sharedMiB > 0 {
		shared = fmt.Sprintf("plus a %d MiB base layer shared by every image (variant)", o.sharedMiB)
	}
	fmt.Fprintf(w, "registry bench: %d images x %d platforms, layers %s MiB, %s; %d signature tags; %d unique blobs, %.2f GiB\n",
		len(b.images), o.platforms, o.layers, shared, b.sigTags, len(b.unique), float64(b.total)/(1<<30))
	fmt.Fprintf(w, "imgpipe --jobs %d; crane copy %d processes at a time (its own -j default: GOMAXPROCS); %d interleaved pairs; limit at %d streams; %d CPUs; %s\n\n",
		o.jobs, o.cranePar, o.pairs, bestConc, runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	names := b.printTable(w)
	ratio := func(label, a, bn, goal string) {
		sa, ok1 := b.stats(a)
		sb, ok2 := b.stats(bn)
		if !ok1 || !ok2 {
			return
		}
		pr := b.pairRatios(a, bn)
		line := fmt.Sprintf("%s: median %.2fx, min %.2fx (ratio of medians, of minimums)", label, sa.median/sb.median, sa.min/sb.min)
		if len(pr) > 0 {
			line += fmt.Sprintf("; per pair median %.2fx (%.2f–%.2f)", median(pr), slices.Min(pr), slices.Max(pr))
		}
		fmt.Fprintf(w, "%s; goal %s\n", line, goal)
	}
	ratio("push: imgpipe / crane copy", runPush, runCrane, "<= 0.80x")
	ratio("push: imgpipe / limit", runPush, runLimit, "<= 1.25x")
	if sp, ok := b.stats(runPush); ok {
		if sl, ok := b.stats(runLimit); ok {
			fmt.Fprintf(w, "push: imgpipe runs at %.0f%% of the limit (median)\n", 100*sl.median/sp.median)
		}
	}
	ratio("warm: imgpipe / sequential crane pull", runWarm, runCranePull, "<= 0.50x")
	b.printBudget(w, []string{runPush, runCrane, runLimit, runWarm, runCranePull})
	ratio("push no-op rerun / first run", runPushNoop, runPush, "<= 0.05x")
	ratio("warm rerun (journal) / first run", runWarmNoop, runWarm, "<= 0.05x")
	rss := 0.0
	for _, s := range b.samples {
		if strings.HasPrefix(s.Run, "imgpipe") {
			rss = max(rss, s.PeakRSSMiB)
		}
	}
	fmt.Fprintf(w, "imgpipe peak RSS: %.1f MiB; goal < 64 MiB\n", rss)
	b.printKinds(w, names)
	fmt.Fprintf(w, "\nsamples (pair: run seconds @load):\n")
	for _, s := range b.samples {
		fmt.Fprintf(w, "  %d: %s %.2fs @%.1f\n", s.Pair, s.Run, s.Seconds, s.Load1)
	}
}

// printKinds gives, for the last sample of each run, its requests by side (up: the
// upstream registry; mirror: the mirror or cache), method, kind and status.
func (b *bench) printKinds(w io.Writer, names []string) {
	fmt.Fprintln(w, "\nrequests by kind (last sample of each run; up = upstream, mirror = mirror or cache):")
	for _, n := range names {
		var last *sample
		for i := range b.samples {
			if b.samples[i].Run == n {
				last = &b.samples[i]
			}
		}
		if last == nil || len(last.Kinds) == 0 || last.Pair == 0 {
			continue
		}
		keys := make([]string, 0, len(last.Kinds))
		for k := range last.Kinds {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, last.Kinds[k])
		}
		fmt.Fprintf(w, "  %s (CPU s: upstream %.2f, mirror %.2f, tool %.2f): %s\n", n, last.UpCPU, last.RegistryCPU-last.UpCPU, last.ToolCPU, strings.Join(parts, ", "))
	}
}

// printTable prints one row per run and returns the runs' names in table order.
func (b *bench) printTable(w io.Writer) []string {
	fmt.Fprintln(w, "| run | n | min s | median s | max s | load (1m, median) | tool CPU s | registries CPU s | harness CPU s | peak RSS MiB | requests | upstream requests | upstream MiB | mirror MiB | check |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	names := []string{runPush, runPushNoop, runCrane, runLimit, runWarm, runWarmNoop, runCranePull}
	for _, s := range b.samples {
		if s.Pair == 0 && !slices.Contains(names, s.Run) {
			names = append(names, s.Run)
		}
	}
	for _, n := range names {
		st, ok := b.stats(n)
		if !ok {
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %.2f | %.2f | %.2f | %.1f | %.2f | %.2f | %.2f | %.1f | %d | %d | %s | %s | %s |\n", n, st.n, st.min, st.median, st.max,
			st.load, st.toolCPU, st.regCPU, st.harnessCPU, st.rss, st.requests, st.upReq, mib(st.upBytes), mib(st.dstBytes), st.checks)
	}
	fmt.Fprintln(w)
	return names
}

// printBudget shows what bounds a run on this machine: all its CPU (tool, registries and
// the harness's proxies) spread over every core is the shortest it could take; a run near
// that floor is CPU-bound, and only less work, not more concurrency, makes it faster.
func (b *bench) printBudget(w io.Writer, names []string) {
	cpus := float64(runtime.NumCPU())
	fmt.Fprintf(w, "CPU budget (medians; floor = all CPU / %d cores; busy = floor / wall):\n", runtime.NumCPU())
	for _, n := range names {
		st, ok := b.stats(n)
		if !ok {
			continue
		}
		all := st.toolCPU + st.regCPU + st.harnessCPU
		fmt.Fprintf(w, "  %s: %.2f s CPU (tool %.2f, registries %.2f, harness %.2f) -> floor %.2f s, wall %.2f s, busy %.0f%%\n",
			n, all, st.toolCPU, st.regCPU, st.harnessCPU, all/cpus, st.median, 100*all/cpus/st.median)
	}
}

// triggerCost measures what it costs the upstream to have a pull-through cache store one
// blob, by the way the blob is asked for: read whole (a node, crane pull), the response
// dropped at its headers (imgpipe warm), or a HEAD. distribution 2.8's proxy fetches a
// blob it lacks twice: once into its storage, once for the client, whoever the client is;
// what the second fetch costs depends on when the cache notices that nobody reads. Each
// way gets a fresh cache and a blob of its own; the store is awaited on the cache's disk
// (asking the cache would fetch again).
func (b *bench) triggerCost(ctx context.Context) error {
	var big []ublob
	for _, u := range b.unique {
		if u.Size >= 4<<20 {
			big = append(big, u)
		}
	}
	ways := []struct {
		name string
		ask  func(url string) error
	}{
		{"read whole (a node, crane pull)", func(url string) error { return askBlob(ctx, http.MethodGet, url, true) }},
		{"dropped at the headers (imgpipe warm)", func(url string) error { return askBlob(ctx, http.MethodGet, url, false) }},
		{"HEAD", func(url string) error { return askBlob(ctx, http.MethodHead, url, false) }},
	}
	if len(big) < len(ways) {
		return nil
	}
	b.triggers = append(b.triggers, "", "cost to the upstream of having the cache store one blob, by how it is asked for (fresh cache each):")
	for i, w := range ways {
		bl := big[i]
		cache, _, stop, err := b.fresh(ctx, "trigger", "http://"+b.upC.host)
		if err != nil {
			return err
		}
		b.upC.reset()
		t := time.Now()
		err = w.ask("http://" + cache.Host + "/v2/" + bl.repo + "/blobs/" + bl.Digest)
		if err == nil {
			err = waitOnDisk(ctx, cache.Root, bl.Blob, time.Minute)
		}
		took := time.Since(t)
		time.Sleep(300 * time.Millisecond) // let the dropped fetch end
		stop()
		if err != nil {
			return fmt.Errorf("trigger %q: %w", w.name, err)
		}
		b.triggers = append(b.triggers, fmt.Sprintf("  %-40s blob %.1f MiB: upstream %d requests, %.1f MiB (%.2fx the blob); stored after %.0f ms",
			w.name, float64(bl.Size)/(1<<20), b.upC.requests.Load(), float64(b.upC.bytes.Load())/(1<<20), float64(b.upC.bytes.Load())/float64(bl.Size), took.Seconds()*1000))
	}
	return nil
}

// askBlob sends one request; whole reads the body to its end, else it is dropped.
func askBlob(ctx context.Context, method, url string, whole bool) error {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	if whole {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	return err
}

// waitOnDisk waits until a registry's storage under root holds the whole blob.
func waitOnDisk(ctx context.Context, root string, bl registrytest.Blob, limit time.Duration) error {
	hex := strings.TrimPrefix(bl.Digest, "sha256:")
	path := filepath.Join(root, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data")
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(path); err == nil && fi.Size() == bl.Size {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return fmt.Errorf("blob %s not stored within %s", bl.Digest, limit)
}
