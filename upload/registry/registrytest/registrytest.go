// Package registrytest runs real Debian docker-registry (distribution 2.8) instances on
// loopback ports for tests and benchmarks, seeds them with synthetic multi-arch images and
// cosign-style signature tags, and puts fault-injecting proxies in front of them
// (connections cut mid-blob, 429, 503). Nothing here talks to anything but 127.0.0.1.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Binary is where Debian's docker-registry package installs the registry.
const Binary = "/usr/bin/docker-registry"

// Require returns the registry binary's path. When it is absent the test is skipped,
// unless the CI environment variable is set: then a missing binary is a failure.
func Require(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing with CI=%s: .ci/run must `apt-get install -y docker-registry`", Binary, os.Getenv("CI"))
		}
		t.Skipf("%s not installed (apt-get install docker-registry); skipping registry integration test", Binary)
	}
	return Binary
}

// Config describes one instance.
type Config struct {
	// Root is the storage directory (created if missing).
	Root string
	// RemoteURL makes the instance a pull-through cache of that upstream.
	RemoteURL string
	// Addr is "127.0.0.1:port"; empty picks a free port.
	Addr string
	// DebugAddr, when set, serves the process's pprof and expvar there (distribution's
	// http.debug.addr): for profiling the registry itself in benchmarks.
	DebugAddr string
}

// Instance is a running docker-registry process.
type Instance struct {
	// Host is "127.0.0.1:port".
	Host string
	// Root is the storage directory.
	Root string
	// Log is the process's combined output file.
	Log  string
	cmd  *exec.Cmd
	done chan error
}

// URL is the instance's base URL.
func (i *Instance) URL() string { return "http://" + i.Host }

// Pid is the registry process id.
func (i *Instance) Pid() int { return i.cmd.Process.Pid }

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Start launches docker-registry with its own config file in cfg.Root's parent and waits
// until /v2/ answers. The process lives until Stop (not bound to ctx beyond startup).
func Start(ctx context.Context, cfg Config) (*Instance, error) {
	if cfg.Root == "" {
		return nil, errors.New("registrytest: Config.Root is required")
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr := cfg.Addr
		if addr == "" {
			var err error
			if addr, err = FreeAddr(); err != nil {
				return nil, err
			}
		}
		inst, err := start(ctx, cfg, addr)
		if err == nil {
			return inst, nil
		}
		lastErr = err
		if cfg.Addr != "" {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, cfg Config, addr string) (*Instance, error) {
	dir := filepath.Dir(filepath.Clean(cfg.Root))
	base := filepath.Base(cfg.Root)
	conf := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: registrytest-fixed-secret
`, strconv.Quote(cfg.Root), addr)
	if cfg.DebugAddr != "" {
		conf += fmt.Sprintf("  debug:\n    addr: %s\n", strconv.Quote(cfg.DebugAddr))
	}
	if cfg.RemoteURL != "" {
		conf += fmt.Sprintf("proxy:\n  remoteurl: %s\n", strconv.Quote(cfg.RemoteURL))
	}
	confPath := filepath.Join(dir, base+".config.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, base+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(Binary, "serve", confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", Binary, err)
	}
	logf.Close()
	inst := &Instance{Host: addr, Root: cfg.Root, Log: logPath, cmd: cmd, done: make(chan error, 1)}
	go func() { inst.done <- cmd.Wait() }()
	if err := inst.waitReady(ctx); err != nil {
		inst.Stop()
		out, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("docker-registry on %s did not start: %w\n%s", addr, err, out)
	}
	return inst, nil
}

func (i *Instance) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-i.done:
			i.done <- err
			return fmt.Errorf("exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, i.URL()+"/v2/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("timed out waiting for /v2/")
}

// Stop terminates the process and waits for it.
func (i *Instance) Stop() error {
	if i.cmd.Process == nil {
		return nil
	}
	_ = i.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-i.done:
	case <-time.After(5 * time.Second):
		_ = i.cmd.Process.Kill()
		<-i.done
	}
	i.done <- nil // later Stops return at once
	return nil
}

// StartT starts an instance for a test and stops it at cleanup.
func StartT(t testing.TB, cfg Config) *Instance {
	t.Helper()
	Require(t)
	if cfg.Root == "" {
		cfg.Root = filepath.Join(t.TempDir(), "registry")
	}
	inst, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		inst.Stop()
		if t.Failed() {
			if out, err := os.ReadFile(inst.Log); err == nil && len(out) > 0 {
				t.Logf("docker-registry %s log (last 4 KiB):\n%s", inst.Host, out[max(0, len(out)-4096):])
			}
		}
	})
	return inst
}
