package site

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// ParseConfig decodes imgpipe.yaml strictly and validates it. name is used in errors
// ("imgpipe.yaml:12: ..."). Errors wrap fail.ErrUsage.
func ParseConfig(name string, data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail.Usage(fmt.Errorf("%s: empty config", name))
		}
		return nil, fail.Usage(fmt.Errorf("%s: %w", name, err))
	}
	return &c, nil
}

// DefaultConfig is the built-in site used when no imgpipe.yaml exists.
func DefaultConfig() *Config {
	return &Config{Version: 1}
}
