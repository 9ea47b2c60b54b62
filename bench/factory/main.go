// Command factorybench measures imgpipe's artifact downloader against the fake
// Image Factory on loopback. It is driven by run.sh, which compares it with
// `curl -s URL | sha256sum` in the same run; it is not a test.
//
//	factorybench serve -size 1073741824   # prints the artifact URL, serves until killed
//	factorybench fetch -cache DIR URL      # one Fetch into an empty cache, prints sha256 and MB/s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
)

const schematicYAML = "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/qemu-guest-agent\n"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: factorybench serve|fetch ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(ctx, os.Args[2:])
	case "fetch":
		err = fetch(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "factorybench:", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	size := fs.Int64("size", 1<<30, "artifact size in bytes")
	_ = fs.Parse(args)
	f := factorytest.Start(factorytest.Options{Catalog: factorytest.ReferenceCatalog(), ImageSize: *size})
	defer f.Close()
	id, err := f.AddSchematic(schematicYAML)
	if err != nil {
		return err
	}
	fmt.Printf("%s/image/%s/v1.9.5/metal-amd64.iso\n", f.URL(), id)
	<-ctx.Done()
	return nil
}

func fetch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fetch", flag.ExitOnError)
	cache := fs.String("cache", "", "cache directory (should be empty)")
	_ = fs.Parse(args)
	if fs.NArg() != 1 || *cache == "" {
		return fmt.Errorf("usage: factorybench fetch -cache DIR URL")
	}
	u := fs.Arg(0)
	c, err := factory.New(u[:len(u)-len("/image/")-64-len("/v1.9.5/metal-amd64.iso")])
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := c.Fetch(ctx, factory.Cache{Dir: *cache}, u, factory.FetchOptions{})
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("%s  %d bytes  %.3f s  %.1f MB/s\n", res.SHA256[len("sha256:"):], res.Size, secs, float64(res.Size)/secs/1e6)
	return nil
}
