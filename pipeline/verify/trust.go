package verify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// TrustedRootFile returns a TrustFunc reading a sigstore trusted_root.json, for offline
// and air-gapped runs (fetch it once with `cosign trusted-root create` or from the TUF
// repository). A missing or invalid file is a usage error.
func TrustedRootFile(path string) TrustFunc {
	return func(context.Context) (root.TrustedMaterial, error) {
		tr, err := root.NewTrustedRootFromPath(path)
		if err != nil {
			return nil, fail.Usage(fmt.Errorf("loading trusted root %s: %w", path, err))
		}
		return tr, nil
	}
}

// LoadTrustedRoot reads a trusted_root.json now (so a bad path is reported before any
// image is looked at) and returns a TrustFunc serving it.
func LoadTrustedRoot(path string) (TrustFunc, error) {
	tm, err := TrustedRootFile(path)(context.Background())
	if err != nil {
		return nil, err
	}
	return func(context.Context) (root.TrustedMaterial, error) { return tm, nil }, nil
}

// OnlineTrustedRoot returns a TrustFunc fetching the Sigstore public-good trusted root
// over TUF, as cosign does (cached under ~/.sigstore/root or $TUF_ROOT). The TUF client
// takes no context, so it is not cancellable.
func OnlineTrustedRoot() TrustFunc {
	return func(context.Context) (root.TrustedMaterial, error) {
		tm, err := cosign.TrustedRoot()
		if err != nil {
			return nil, fmt.Errorf("fetching the sigstore trusted root over TUF (use --trusted-root FILE offline): %w", err)
		}
		return tm, nil
	}
}

// maxKeySize bounds the factory's public key response; a PEM key is well under 4 KiB.
const maxKeySize = 64 << 10

// FetchFactoryKey downloads an Image Factory's installer signing key from
// <factoryURL>/oci/cosign/signing-key.pub. It returns (nil, nil) when the factory serves
// an empty body: a factory that signs keyless (GSA) has no key.
func FetchFactoryKey(ctx context.Context, client *http.Client, factoryURL string) (*Key, error) {
	u, err := url.Parse(strings.TrimSuffix(factoryURL, "/") + "/oci/cosign/signing-key.pub")
	if err != nil || u.Host == "" {
		return nil, fail.Usage(fmt.Errorf("factory URL %q: want https://host[:port]", factoryURL))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetching factory signing key: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching factory signing key: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching factory signing key %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("fetching factory signing key %s: %w", u, err)
	}
	if len(data) > maxKeySize {
		return nil, fmt.Errorf("fetching factory signing key %s: response larger than %d bytes", u, maxKeySize)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	k, err := ParsePublicKey(u.String(), data)
	if err != nil {
		return nil, err
	}
	return &k, nil
}
