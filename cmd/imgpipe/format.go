package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal: progress is a redrawn bar there and
// plain lines elsewhere (CI logs, files, pipes).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// humanBytes renders a byte count in binary units: 512 B, 1.5 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// dash stands in for an empty table cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneDefault keeps one default in each flag's help. Where the usage text states the
// default itself ("(default: proxmox.keep; 0 keeps all)"), pflag would add its own
// "(default -1)" for the sentinel that means "not given"; that one is dropped by
// presenting the type's zero value as DefValue, which pflag does not print.
func oneDefault(root *cobra.Command) {
	hide := func(f *pflag.Flag) {
		if !strings.Contains(f.Usage, "(default") {
			return
		}
		switch f.Value.Type() {
		case "int", "int64", "uint", "float64", "count":
			f.DefValue = "0"
		case "bool":
			f.DefValue = "false"
		case "duration":
			f.DefValue = "0s"
		case "stringSlice", "stringArray", "intSlice":
			f.DefValue = "[]"
		default:
			f.DefValue = ""
		}
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalNonPersistentFlags().VisitAll(hide)
		c.PersistentFlags().VisitAll(hide)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}
