// Command fakepve serves upload/proxmox/pvetest's fake Proxmox VE on a loopback
// TLS port for the upload benchmark (run.sh). It writes the API URL, the CA
// certificate and a curl header file with the token into -dir, then serves until
// interrupted. Tasks finish on their first poll so that imgpipe's timing is the
// transfer, not the poll interval.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/imgpipe/imgpipe/upload/proxmox/pvetest"
)

func main() {
	dir := flag.String("dir", "", "directory for url, ca.pem, token, curl-auth.txt")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "fakepve: -dir is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := pvetest.New(pvetest.WithTaskPolls(0))
	defer srv.Close()
	files := map[string]string{
		"url":           srv.URL,
		"ca.pem":        string(srv.CertPEM()),
		"token":         srv.Token(),
		"curl-auth.txt": "Authorization: PVEAPIToken=" + srv.Token() + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(*dir, name), []byte(content), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "fakepve:", err)
			os.Exit(1)
		}
	}
	if err := os.WriteFile(filepath.Join(*dir, "ready"), nil, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "fakepve:", err)
		os.Exit(1)
	}
	<-ctx.Done()
}
