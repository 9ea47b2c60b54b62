package registry

import (
	"context"
	"fmt"
	"strings"
)

// verify checks that the mirror resolves the image's tag (or digest) to the expected
// digest and still has every signature tag carried along.
func (r *run) verify(ctx context.Context, p Placement, ir *ImageReport) error {
	if ir.current {
		ir.Verified = true
		return nil
	}
	ref, err := ParseRef(p.Ref)
	if err != nil {
		return err
	}
	mc, err := r.endpointClient(p.Endpoint)
	if err != nil {
		return err
	}
	repo := ref.at(p.Endpoint).Repository
	at := ref.Tag
	if at == "" {
		at = ir.Digest
	}
	var problems []string
	d, found, err := mc.headManifest(ctx, repo, at)
	switch {
	case err != nil:
		return fmt.Errorf("verifying %s: %w", p.Mirror, err)
	case !found:
		problems = append(problems, fmt.Sprintf("%s does not resolve at the mirror", at))
	case d != ir.Digest:
		problems = append(problems, fmt.Sprintf("%s resolves to %s at the mirror, want %s", at, d, ir.Digest))
	}
	if at != ir.Digest {
		if _, found, err := mc.headManifest(ctx, repo, ir.Digest); err != nil {
			return fmt.Errorf("verifying %s: %w", p.Mirror, err)
		} else if !found {
			problems = append(problems, fmt.Sprintf("%s is missing at the mirror", ir.Digest))
		}
	}
	for _, tag := range ir.Signatures {
		if _, found, err := mc.headManifest(ctx, repo, tag); err != nil {
			return fmt.Errorf("verifying %s: %w", tag, err)
		} else if !found {
			problems = append(problems, fmt.Sprintf("signature tag %s is missing at the mirror", tag))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("verification failed: %s", strings.Join(problems, "; "))
	}
	ir.Verified = true
	return nil
}
