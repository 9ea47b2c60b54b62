package factory

import (
	"context"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// DefaultBuildTimeout bounds one pre-warm request: the factory builds an
// installer on the first pull of its manifest, which takes minutes, not seconds.
const DefaultBuildTimeout = 15 * time.Minute

// PrewarmResult is an installer whose manifest the factory has served.
type PrewarmResult struct {
	Profile string        `json:"profile,omitempty"`
	Ref     string        `json:"ref"`
	Digest  string        `json:"digest,omitempty"`
	Took    time.Duration `json:"took_ns,omitempty"`
	Planned bool          `json:"planned,omitempty"`
}

// PrewarmInstaller requests the installer manifest (e.g.
// factory.talos.dev/metal-installer/<id>:v1.9.5) from the factory registry so
// that its on-demand build happens now rather than while nodes wait in an
// upgrade. Each attempt may take up to buildTimeout (DefaultBuildTimeout when 0);
// 429/5xx and broken connections are retried like every factory request.
func (c *Client) PrewarmInstaller(ctx context.Context, ref string, buildTimeout time.Duration) (PrewarmResult, error) {
	if buildTimeout <= 0 {
		buildTimeout = DefaultBuildTimeout
	}
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return PrewarmResult{}, fmt.Errorf("pre-warming installer: parsing %q: %w", ref, err)
	}
	auth := authn.Anonymous
	if (c.user != "" || c.pass != "") && r.Context().RegistryStr() == c.registry {
		auth = &authn.Basic{Username: c.user, Password: c.pass}
	}
	start := time.Now()
	desc, err := remote.Get(r,
		remote.WithContext(ctx),
		remote.WithAuth(auth),
		remote.WithUserAgent("imgpipe"),
		// Retries are the Transport's, with the build-sized per-attempt timeout.
		remote.WithTransport(&Transport{Base: c.rt, Policy: c.policy, AttemptTimeout: buildTimeout, Log: c.log}),
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithRetryStatusCodes(),
	)
	if err != nil {
		return PrewarmResult{}, fmt.Errorf("pre-warming installer %s: %w", ref, err)
	}
	return PrewarmResult{Ref: ref, Digest: desc.Digest.String(), Took: time.Since(start)}, nil
}
