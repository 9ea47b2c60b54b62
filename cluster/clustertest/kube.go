package clustertest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// KubeAPI is a fake Kubernetes API serving GET /api/v1/nodes (limit/continue
// paging, as the real one) over TLS; anything else is 404. It wants the bearer token
// of its kubeconfig, or a client certificate of its CA.
type KubeAPI struct {
	// URL is the server's https://127.0.0.1:port.
	URL string
	// Kubeconfig is the path of a kubeconfig (CA, client certificate and token inline).
	Kubeconfig string
	// Token is the bearer token the kubeconfig carries.
	Token string

	mu    sync.Mutex
	nodes []json.RawMessage
	calls int
}

// NewKubeAPI starts the fake with nodes (each one Node object as JSON, as the API
// serves it), closed at the end of the test.
func NewKubeAPI(t testing.TB, nodes ...json.RawMessage) *KubeAPI {
	t.Helper()
	p := newPKI(t)
	k := &KubeAPI{nodes: nodes, Token: "clustertest-token"}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(k.serve))
	srv.TLS = p.serverTLS()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	k.URL = srv.URL
	k.Kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	b64 := base64.StdEncoding.EncodeToString
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: admin@fake
clusters:
- name: fake
  cluster:
    server: %s
    certificate-authority-data: %s
contexts:
- name: admin@fake
  context: {cluster: fake, user: admin@fake, namespace: default}
users:
- name: admin@fake
  user:
    token: %s
    client-certificate-data: %s
    client-key-data: %s
`, srv.URL, b64(p.caPEM), k.Token, b64(p.clientPEM), b64(p.keyPEM))
	if err := os.WriteFile(k.Kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// SetNodes replaces the nodes served.
func (k *KubeAPI) SetNodes(nodes ...json.RawMessage) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.nodes = nodes
}

// Calls counts the requests served.
func (k *KubeAPI) Calls() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls
}

func (k *KubeAPI) serve(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.calls++
	nodes := k.nodes
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+k.Token && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0) {
		status(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	if r.Method != http.MethodGet || r.URL.Path != "/api/v1/nodes" {
		status(w, http.StatusNotFound, "the server could not find the requested resource")
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	start, _ := strconv.Atoi(r.URL.Query().Get("continue"))
	if limit <= 0 {
		limit = len(nodes)
	}
	end := min(start+limit, len(nodes))
	cont := ""
	if end < len(nodes) {
		cont = strconv.Itoa(end)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": "NodeList", "apiVersion": "v1",
		"metadata": map[string]any{"resourceVersion": "4242", "continue": cont},
		"items":    nodes[min(start, len(nodes)):end],
	})
}

func status(w http.ResponseWriter, code int, msg string) {
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "code": code,
	})
}
