package main

import (
	"log/slog"
	"regexp"
	"strings"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox"
)

// userinfoRE finds the user:password@ part of URLs inside free text.
var userinfoRE = regexp.MustCompile(`(://)[^/\s@"']+@`)

// redact removes secrets from text that leaves the process (error messages, -v logs):
// URL userinfo anywhere in it, and the secret values the environment holds (factory
// password, the Proxmox token's secret part). Configuration refuses URLs with
// credentials already; this is the net under every message, at every log level.
func (a *app) redact(s string) string {
	s = userinfoRE.ReplaceAllString(s, "${1}REDACTED@")
	for _, secret := range a.secrets() {
		s = strings.ReplaceAll(s, secret, "REDACTED")
	}
	return s
}

func (a *app) secrets() []string {
	var out []string
	if p := a.getenv(envFactoryPass); len(p) >= 4 {
		out = append(out, p)
	}
	if tok := a.getenv(proxmox.TokenEnv); tok != "" {
		if i := strings.LastIndexByte(tok, '='); i >= 0 && len(tok)-i > 4 {
			out = append(out, strings.TrimSpace(tok[i+1:]))
		}
	}
	return out
}

// redactAttr is the -v log handler's ReplaceAttr: every string and formatted value
// goes through redact.
func (a *app) redactAttr(_ []string, attr slog.Attr) slog.Attr {
	switch attr.Value.Kind() {
	case slog.KindString, slog.KindAny:
		return slog.String(attr.Key, a.redact(attr.Value.String()))
	}
	return attr
}

// checkFlagURL refuses a URL flag that carries credentials (usage error, exit 2),
// without repeating them.
func checkFlagURL(flag, raw string) error {
	if err := site.CheckURLCredentials(raw); err != nil {
		return usageErrorf("%s %s: %v", flag, site.RedactURL(raw), err)
	}
	return nil
}
