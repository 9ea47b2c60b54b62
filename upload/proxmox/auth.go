package proxmox

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// TokenEnv is the environment variable that holds the API token.
const TokenEnv = "IMGPIPE_PROXMOX_TOKEN"

// ErrNoToken means neither IMGPIPE_PROXMOX_TOKEN nor a token file was given.
var ErrNoToken = errors.New("no Proxmox API token: set " + TokenEnv + " or proxmox.tokenFile")

var tokenIDRE = regexp.MustCompile(`^[^\s@!=]+@[^\s@!=]+![A-Za-z][A-Za-z0-9._-]*$`)

// Token is a PVE API token (user@realm!tokenid and its secret). Its String and
// LogValue never show the secret, so it is safe to log or format by accident.
type Token struct {
	id     string
	secret string
}

// ParseToken reads "PVEAPIToken=user@realm!id=secret" or "user@realm!id=secret".
// Errors never quote the input, which holds the secret.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "PVEAPIToken=")
	// PVE splits at the last "=" (verify_token's greedy ^(.*)=(.*)$).
	i := strings.LastIndexByte(s, '=')
	if i < 0 {
		return Token{}, fail.Usage(errors.New("parsing Proxmox API token: want user@realm!tokenid=secret"))
	}
	id, secret := s[:i], s[i+1:]
	if !tokenIDRE.MatchString(id) {
		return Token{}, fail.Usage(errors.New("parsing Proxmox API token: the id part is not user@realm!tokenid"))
	}
	if secret == "" || strings.ContainsAny(secret, " \t\r\n") {
		return Token{}, fail.Usage(errors.New("parsing Proxmox API token: the secret part is empty or has blanks"))
	}
	return Token{id: id, secret: secret}, nil
}

// LoadToken takes the token from IMGPIPE_PROXMOX_TOKEN, else from file (if set).
func LoadToken(getenv func(string) string, file string) (Token, error) {
	if v := getenv(TokenEnv); v != "" {
		t, err := ParseToken(v)
		if err != nil {
			return Token{}, fmt.Errorf("%s: %w", TokenEnv, err)
		}
		return t, nil
	}
	if file == "" {
		return Token{}, fail.Usage(ErrNoToken)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return Token{}, fail.Usage(fmt.Errorf("reading Proxmox token file: %w", err))
	}
	t, err := ParseToken(string(data))
	if err != nil {
		return Token{}, fmt.Errorf("%s: %w", file, err)
	}
	return t, nil
}

// ID is user@realm!tokenid (not secret).
func (t Token) ID() string { return t.id }

// IsZero reports whether the token is unset.
func (t Token) IsZero() bool { return t.id == "" }

// String shows the id only.
func (t Token) String() string { return t.id + "=<redacted>" }

// LogValue keeps the secret out of slog output.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }
