package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// ErrUnreachable marks an API (Kubernetes or Talos) that could not be reached or
// answered with an error; callers exit 1 on it.
var ErrUnreachable = errors.New("cluster API unreachable")

// Kube is a small typed, read-only client of the Kubernetes API: it lists nodes.
// client-go would bring ~40 modules (apimachinery, api, klog, openapi) for one GET.
type Kube struct {
	cfg  *KubeConfig
	http *http.Client
}

// KubeOption configures a Kube.
type KubeOption func(*Kube)

// WithHTTPTimeout bounds each request (default 30s).
func WithHTTPTimeout(d time.Duration) KubeOption {
	return func(k *Kube) { k.http.Timeout = d }
}

// NewKube returns a client for the kubeconfig's API server.
func NewKube(cfg *KubeConfig, opts ...KubeOption) *Kube {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg.TLS.Clone()
	k := &Kube{cfg: cfg, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(k)
	}
	return k
}

// HTTPError is a non-2xx answer of the Kubernetes API.
type HTTPError struct {
	Code    int
	URL     string
	Message string // the API's Status message, when it sent one
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("GET %s: HTTP %d", e.URL, e.Code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	switch e.Code {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += " (the kubeconfig's credentials may not list nodes: they need get/list on nodes)"
	}
	return msg
}

func (e *HTTPError) Unwrap() error { return ErrUnreachable }

// Node JSON as the API serves it, only the fields read.
type apiNode struct {
	Metadata struct {
		Name        string            `json:"name"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Status struct {
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
		Capacity map[string]string `json:"capacity"`
		NodeInfo struct {
			KubeletVersion string `json:"kubeletVersion"`
			OSImage        string `json:"osImage"`
		} `json:"nodeInfo"`
	} `json:"status"`
}

type apiNodeList struct {
	Metadata struct {
		Continue string `json:"continue"`
	} `json:"metadata"`
	Items []apiNode `json:"items"`
}

// listNodes reads every node, 500 per page.
func (k *Kube) listNodes(ctx context.Context) ([]apiNode, error) {
	var out []apiNode
	cont := ""
	for {
		q := url.Values{"limit": {"500"}}
		if cont != "" {
			q.Set("continue", cont)
		}
		var page apiNodeList
		if err := k.get(ctx, "/api/v1/nodes?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if cont = page.Metadata.Continue; cont == "" {
			return out, nil
		}
	}
}

func (k *Kube) get(ctx context.Context, path string, v any) error {
	u := k.cfg.Server + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if k.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+k.cfg.Token)
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return fmt.Errorf("listing nodes at %s: %w: %w", k.cfg.Server, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var st struct {
			Message string `json:"message"`
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = json.Unmarshal(body, &st)
		return fmt.Errorf("listing nodes: %w", &HTTPError{Code: resp.StatusCode, URL: k.cfg.Server + "/api/v1/nodes", Message: st.Message})
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(v); err != nil {
		return fmt.Errorf("listing nodes: decoding the API's answer: %w", err)
	}
	return nil
}
