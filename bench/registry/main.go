// Command registry-bench times imgpipe's registry mirroring against crane and skopeo on
// loopback Debian docker-registry instances, all in one run: it seeds an upstream with a
// synthetic multi-arch image set (>= 20 images, >= 1 GiB, cosign-style .sig tags on half),
// then fills fresh mirrors with `imgpipe mirror` (push), its no-op rerun, `crane copy`
// (one invocation per image and signature tag, sequential and 4 at a time) and
// `skopeo copy --all --preserve-digests`, and warms fresh pull-through caches with
// `imgpipe mirror --mode warm` against pulling each image through the cache one by one
// (`skopeo copy --all` into an OCI layout). Every registry sits behind a counting proxy,
// so requests and bytes are measured the same way for every tool; peak RSS is the
// child's getrusage maximum. Run it with bench/registry/run.sh.
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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry/registrytest"
)

type options struct {
	images    int
	platforms int
	layers    string
	sharedMiB int
	jobs      int
	work      string
	imgpipe   string
	crane     string
	skopeo    string
	keep      bool
	skip      string
}

func main() {
	var o options
	flag.IntVar(&o.images, "images", 24, "number of images")
	flag.IntVar(&o.platforms, "platforms", 2, "platforms per image (linux/amd64, linux/arm64, ...)")
	flag.StringVar(&o.layers, "layer-mib", "10,12", "unique layer sizes per platform, MiB, comma-separated")
	flag.IntVar(&o.sharedMiB, "shared-mib", 16, "one base layer shared by every image, MiB")
	flag.IntVar(&o.jobs, "jobs", 8, "imgpipe --jobs (its default)")
	flag.StringVar(&o.work, "work", "", "work directory (default: a fresh temp dir, removed afterwards)")
	flag.StringVar(&o.imgpipe, "imgpipe", "imgpipe", "imgpipe binary")
	flag.StringVar(&o.crane, "crane", "crane", "crane binary (go install github.com/google/go-containerregistry/cmd/crane@v0.22.1)")
	flag.StringVar(&o.skopeo, "skopeo", "skopeo", "skopeo binary")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.StringVar(&o.skip, "skip", "", "comma-separated runs to skip (crane-par, ...)")
	flag.Parse()
	ctx := context.Background()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "registry-bench:", err)
		os.Exit(1)
	}
}

// counter is a reverse proxy in front of one registry that counts requests and bytes
// in both directions.
type counter struct {
	host     string
	requests atomic.Int64
	bytes    atomic.Int64
	srv      *http.Server
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
	c := &counter{host: l.Addr().String()}
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
		return nil
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

func (c *counter) reset() { c.requests.Store(0); c.bytes.Store(0) }

type countBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// result is one timed run.
type result struct {
	Name          string  `json:"name"`
	Seconds       float64 `json:"seconds"`
	Processes     int     `json:"processes"`
	PeakRSSMiB    float64 `json:"peak_rss_mib"`
	Requests      int64   `json:"requests"`
	MirrorBytes   int64   `json:"mirror_bytes"`
	UpstreamBytes int64   `json:"upstream_bytes"`
	Check         string  `json:"check"`
}

type image struct {
	*registrytest.Image
}

func run(ctx context.Context, o options) error {
	for _, bin := range []string{o.imgpipe, o.crane, o.skopeo, registrytest.Binary} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("need %s: %w", bin, err)
		}
	}
	work := o.work
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "imgpipe-registry-bench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(work)
		}
	} else if err := os.RemoveAll(work); err != nil {
		return err
	}
	var instances []*registrytest.Instance
	defer func() {
		for _, i := range instances {
			i.Stop()
		}
	}()
	start := func(name, remote string) (*registrytest.Instance, *counter, error) {
		inst, err := registrytest.Start(ctx, registrytest.Config{Root: filepath.Join(work, name), RemoteURL: remote})
		if err != nil {
			return nil, nil, err
		}
		instances = append(instances, inst)
		c, err := newCounter(inst.URL())
		return inst, c, err
	}

	up, upC, err := start("upstream", "")
	if err != nil {
		return err
	}
	var layers []int64
	for _, s := range strings.Split(o.layers, ",") {
		var mib int64
		if _, err := fmt.Sscan(strings.TrimSpace(s), &mib); err != nil {
			return fmt.Errorf("-layer-mib %q: %w", o.layers, err)
		}
		layers = append(layers, mib<<20)
	}
	plats := []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x"}[:o.platforms]
	fmt.Fprintf(os.Stderr, "seeding %d images on %s ...\n", o.images, up.Host)
	t0 := time.Now()
	seeder := &registrytest.Seeder{Host: up.Host}
	var images []image
	var total int64
	seen := map[string]bool{}
	sigTags := 0
	for i := 0; i < o.images; i++ {
		im, err := seeder.Seed(ctx, registrytest.Spec{
			Repo: fmt.Sprintf("bench/app-%02d", i), Tag: "v1.0." + fmt.Sprint(i), Platforms: plats,
			Shared: []int64{int64(o.sharedMiB) << 20}, SharedSeed: 42,
			Layers: layers, Seed: uint64(1000 + i), Sign: i%2 == 0,
		})
		if err != nil {
			return err
		}
		for _, b := range im.Blobs {
			if !seen[b.Digest] {
				total += b.Size
			}
			seen[b.Digest] = true
		}
		sigTags += len(im.Signatures)
		images = append(images, image{im})
	}
	fmt.Fprintf(os.Stderr, "seeded %d images, %d signature tags, %d unique blobs, %.2f GiB in %.1fs\n",
		len(images), sigTags, len(seen), float64(total)/(1<<30), time.Since(t0).Seconds())

	// The lock every imgpipe run reads: images at the counting proxy of the upstream.
	lock := &site.Lock{Schema: site.LockSchema, Talos: "v1.9.6"}
	for _, im := range images {
		lock.CoreImages = append(lock.CoreImages, site.Image{Role: "bench", Ref: im.Ref(upC.host), Digest: im.Digest})
	}
	lockPath := filepath.Join(work, "imgpipe.lock.json")
	if err := site.WriteLock(lockPath, lock); err != nil {
		return err
	}
	config := func(name, mirror, mode string) (string, error) {
		p := filepath.Join(work, name+".yaml")
		cfg := fmt.Sprintf("version: 1\nprofiles:\n  - name: bench\nregistries:\n  mirrors:\n    %q:\n      endpoint: http://%s\n      mode: %s\n", upC.host, mirror, mode)
		return p, os.WriteFile(p, []byte(cfg), 0o644)
	}

	var results []result
	measure := func(name string, dst *counter, f func() (int, float64, error), check func() string) error {
		upC.reset()
		if dst != nil {
			dst.reset()
		}
		fmt.Fprintf(os.Stderr, "running %s ...\n", name)
		t := time.Now()
		procs, rss, err := f()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r := result{Name: name, Seconds: time.Since(t).Seconds(), Processes: procs, PeakRSSMiB: rss,
			Requests: upC.requests.Load(), UpstreamBytes: upC.bytes.Load()}
		if dst != nil {
			r.Requests += dst.requests.Load()
			r.MirrorBytes = dst.bytes.Load()
		}
		r.Check = check()
		fmt.Fprintf(os.Stderr, "  %s: %.2fs, %d requests, check: %s\n", name, r.Seconds, r.Requests, r.Check)
		results = append(results, r)
		return nil
	}
	checkTags := func(host string) func() string {
		return func() string {
			bad := 0
			for _, im := range images {
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
			return fmt.Sprintf("ok: %d tags + %d signature tags, digests identical", len(images), sigTags)
		}
	}
	checkKept := func(host string, withSigs bool) func() string {
		return func() string {
			kept, all := 0, 0
			for _, im := range images {
				for _, b := range im.Blobs[:blobCount(im, withSigs)] {
					all++
					if ok, _ := servedLocally(host, im.Repo, b.Digest); ok {
						kept++
					}
				}
			}
			return fmt.Sprintf("cache holds %d of %d blob links", kept, all)
		}
	}

	// 1. imgpipe push, then its no-op rerun.
	m1, m1C, err := start("mirror-imgpipe", "")
	if err != nil {
		return err
	}
	cfg1, err := config("push", m1C.host, "push")
	if err != nil {
		return err
	}
	imgpipeArgs := func(cfg string, extra ...string) []string {
		return append([]string{"mirror", "--lock", lockPath, "--config", cfg, "-o", "json", "--jobs", fmt.Sprint(o.jobs)}, extra...)
	}
	if err := measure("imgpipe mirror (push)", m1C, func() (int, float64, error) {
		return runAll(ctx, work, [][]string{append([]string{o.imgpipe}, imgpipeArgs(cfg1, "--journal", "off")...)}, 1)
	}, checkTags(m1.Host)); err != nil {
		return err
	}
	if err := measure("imgpipe mirror (push, no-op rerun)", m1C, func() (int, float64, error) {
		return runAll(ctx, work, [][]string{append([]string{o.imgpipe}, imgpipeArgs(cfg1, "--journal", "off")...)}, 1)
	}, checkTags(m1.Host)); err != nil {
		return err
	}

	// 2. crane copy, one invocation per image and per signature tag.
	craneCmds := func(dst string) [][]string {
		var cmds [][]string
		for _, im := range images {
			cmds = append(cmds, []string{o.crane, "copy", upC.host + "/" + im.Repo + ":" + im.Tag, dst + "/" + im.Repo + ":" + im.Tag})
			for _, s := range im.Signatures {
				cmds = append(cmds, []string{o.crane, "copy", upC.host + "/" + im.Repo + ":" + s, dst + "/" + im.Repo + ":" + s})
			}
		}
		return cmds
	}
	m2, m2C, err := start("mirror-crane", "")
	if err != nil {
		return err
	}
	if err := measure("crane copy (sequential)", m2C, func() (int, float64, error) {
		return runAll(ctx, work, craneCmds(m2C.host), 1)
	}, checkTags(m2.Host)); err != nil {
		return err
	}
	if !strings.Contains(o.skip, "crane-par") {
		m4, m4C, err := start("mirror-crane-par", "")
		if err != nil {
			return err
		}
		if err := measure("crane copy (4 in parallel)", m4C, func() (int, float64, error) {
			return runAll(ctx, work, craneCmds(m4C.host), 4)
		}, checkTags(m4.Host)); err != nil {
			return err
		}
	}

	// 3. skopeo copy --all --preserve-digests.
	m3, m3C, err := start("mirror-skopeo", "")
	if err != nil {
		return err
	}
	skopeo := func(src, dst string) []string {
		return []string{o.skopeo, "copy", "--all", "--preserve-digests", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
			"docker://" + src, "docker://" + dst}
	}
	var skopeoCmds [][]string
	for _, im := range images {
		skopeoCmds = append(skopeoCmds, skopeo(upC.host+"/"+im.Repo+":"+im.Tag, m3C.host+"/"+im.Repo+":"+im.Tag))
		for _, s := range im.Signatures {
			skopeoCmds = append(skopeoCmds, skopeo(upC.host+"/"+im.Repo+":"+s, m3C.host+"/"+im.Repo+":"+s))
		}
	}
	if err := measure("skopeo copy (sequential)", m3C, func() (int, float64, error) {
		return runAll(ctx, work, skopeoCmds, 1)
	}, checkTags(m3.Host)); err != nil {
		return err
	}

	// 4. Warm a pull-through cache with imgpipe, then rerun (journal).
	c1, c1C, err := start("cache-imgpipe", "http://"+upC.host)
	if err != nil {
		return err
	}
	cfgW, err := config("warm", c1C.host, "warm")
	if err != nil {
		return err
	}
	journal := filepath.Join(work, "warm-journal.json")
	if err := measure("imgpipe mirror (warm)", c1C, func() (int, float64, error) {
		return runAll(ctx, work, [][]string{append([]string{o.imgpipe}, imgpipeArgs(cfgW, "--journal", journal)...)}, 1)
	}, checkKept(c1.Host, true)); err != nil {
		return err
	}
	if err := measure("imgpipe mirror (warm, rerun)", c1C, func() (int, float64, error) {
		return runAll(ctx, work, [][]string{append([]string{o.imgpipe}, imgpipeArgs(cfgW, "--journal", journal)...)}, 1)
	}, checkKept(c1.Host, true)); err != nil {
		return err
	}

	// 5. Pull each image through a second cache, one by one.
	c2, c2C, err := start("cache-pull", "http://"+upC.host)
	if err != nil {
		return err
	}
	pullDir := filepath.Join(work, "pulled")
	if err := os.MkdirAll(pullDir, 0o755); err != nil {
		return err
	}
	if err := measure("skopeo pull through cache (one by one)", c2C, func() (int, float64, error) {
		procs, peak := 0, 0.0
		for i, im := range images {
			dir := filepath.Join(pullDir, fmt.Sprint(i))
			n, rss, err := runAll(ctx, work, [][]string{{o.skopeo, "copy", "--all", "--quiet", "--src-tls-verify=false",
				"docker://" + c2C.host + "/" + im.Repo + ":" + im.Tag, "oci:" + dir}}, 1)
			if err != nil {
				return procs, peak, err
			}
			os.RemoveAll(dir)
			procs += n
			peak = max(peak, rss)
		}
		return procs, peak, nil
	}, checkKept(c2.Host, false)); err != nil {
		return err
	}

	printResults(os.Stdout, o, len(images), sigTags, len(seen), total, results)
	raw, _ := json.MarshalIndent(results, "", "  ")
	return os.WriteFile(filepath.Join(work, "results.json"), raw, 0o644)
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

func printResults(w io.Writer, o options, n, sigs, blobs int, total int64, rs []result) {
	fmt.Fprintf(w, "registry bench: %d images x %d platforms (layers %s MiB + %d MiB shared base), %d signature tags, %d unique blobs, %.2f GiB; imgpipe --jobs %d; %s\n\n",
		n, o.platforms, o.layers, o.sharedMiB, sigs, blobs, float64(total)/(1<<30), o.jobs, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintln(w, "| run | wall s | processes | peak RSS MiB | requests | bytes at mirror | bytes from upstream | check |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %.2f | %d | %.1f | %d | %s | %s | %s |\n", r.Name, r.Seconds, r.Processes, r.PeakRSSMiB, r.Requests,
			mib(r.MirrorBytes), mib(r.UpstreamBytes), r.Check)
	}
	find := func(name string) *result {
		for i := range rs {
			if rs[i].Name == name {
				return &rs[i]
			}
		}
		return nil
	}
	push, noop := find("imgpipe mirror (push)"), find("imgpipe mirror (push, no-op rerun)")
	if push != nil && noop != nil {
		fmt.Fprintf(w, "\nno-op rerun / first run: %.1f%% (target < 5%%)\n", 100*noop.Seconds/push.Seconds)
	}
	for _, other := range []string{"crane copy (sequential)", "crane copy (4 in parallel)", "skopeo copy (sequential)"} {
		if r := find(other); r != nil && push != nil {
			fmt.Fprintf(w, "imgpipe push vs %s: %.2fx faster\n", other, r.Seconds/push.Seconds)
		}
	}
	if wm, p := find("imgpipe mirror (warm)"), find("skopeo pull through cache (one by one)"); wm != nil && p != nil {
		fmt.Fprintf(w, "imgpipe warm vs one-by-one pull: %.2fx faster\n", p.Seconds/wm.Seconds)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
