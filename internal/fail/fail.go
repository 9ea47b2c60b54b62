// Package fail classifies errors so the CLI can map them to exit codes without
// every package knowing about exit codes: 2 for usage/config errors, 3 for policy
// failures (incompatible versions, bad signatures, blocked upgrades), 1 otherwise.
package fail

import "errors"

// ErrUsage marks an error in what the user gave us: flags, imgpipe.yaml, matrix.yaml, an inventory.
var ErrUsage = errors.New("usage or configuration error")

// ErrPolicy marks a refusal on policy grounds: incompatible versions, a missing required
// extension, an NVIDIA pairing violation, a failed signature, a blocked upgrade.
var ErrPolicy = errors.New("policy failure")

type classified struct {
	err  error
	kind error
}

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.err, c.kind} }

// Usage wraps err so that errors.Is(err, ErrUsage) holds; the message is unchanged.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, kind: ErrUsage}
}

// Policy wraps err so that errors.Is(err, ErrPolicy) holds; the message is unchanged.
func Policy(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, kind: ErrPolicy}
}
