// Command fakegh is the gh that ghasim puts on a workflow's PATH: it keeps pull
// requests and issues in the file named by $GHASIM_GH_STATE and records every call.
package main

import (
	"os"

	"github.com/imgpipe/imgpipe/internal/ghasim"
)

func main() {
	os.Exit(ghasim.GHMain(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}
