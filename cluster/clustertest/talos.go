package clustertest

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	cosiapi "github.com/cosi-project/runtime/api/v1alpha1"
	"github.com/cosi-project/runtime/pkg/state"
	"github.com/cosi-project/runtime/pkg/state/impl/inmem"
	"github.com/cosi-project/runtime/pkg/state/impl/namespaced"
	cosiserver "github.com/cosi-project/runtime/pkg/state/protobuf/server"
	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/extensions"
	"github.com/siderolabs/talos/pkg/machinery/resources/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TalosNode is what the fake Talos API answers for one node address.
type TalosNode struct {
	Version    string // "v1.9.5"
	Extensions []Extension
	// Unreachable makes every call for the node fail with Unavailable, as apid does
	// when it cannot dial the node.
	Unreachable bool
}

// Extension is an installed extension (name, version, image).
type Extension struct{ Name, Version, Image string }

// TalosAPI is a fake Talos API (apid): gRPC over TLS on 127.0.0.1 with
// MachineService.Version and the COSI State service, routed by the "node" metadata
// the client sets.
type TalosAPI struct {
	// Endpoint is host:port.
	Endpoint string
	// Talosconfig is the path of a talosconfig for the endpoint (CA, client cert inline).
	Talosconfig string

	mu     sync.Mutex
	nodes  map[string]TalosNode
	states map[string]*cosiserver.State
}

// NewTalosAPI starts the fake for nodes (address -> node), stopped at the end of the test.
func NewTalosAPI(t testing.TB, nodes map[string]TalosNode) *TalosAPI {
	t.Helper()
	p := newPKI(t)
	f := &TalosAPI{}
	if err := f.SetNodes(nodes); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(p.serverTLS())))
	machine.RegisterMachineServiceServer(srv, &machineServer{f: f})
	cosiapi.RegisterStateServer(srv, &stateServer{f: f})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	f.Endpoint = lis.Addr().String()
	f.Talosconfig = filepath.Join(t.TempDir(), "talosconfig")
	b64 := base64.StdEncoding.EncodeToString
	cfg := fmt.Sprintf("context: fake\ncontexts:\n  fake:\n    endpoints:\n      - %s\n    ca: %s\n    crt: %s\n    key: %s\n",
		f.Endpoint, b64(p.caPEM), b64(p.clientPEM), b64(p.keyPEM))
	if err := os.WriteFile(f.Talosconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// SetNodes replaces what the fake answers.
func (f *TalosAPI) SetNodes(nodes map[string]TalosNode) error {
	states := map[string]*cosiserver.State{}
	for addr, n := range nodes {
		st := state.WrapCore(namespaced.NewState(inmem.Build))
		for i, e := range n.Extensions {
			r := runtime.NewExtensionStatus(runtime.NamespaceName, strconv.Itoa(i))
			*r.TypedSpec() = extensions.Layer{Image: e.Image, Metadata: extensions.Metadata{Name: e.Name, Version: e.Version}}
			if err := st.Create(context.Background(), r); err != nil {
				return fmt.Errorf("seeding extensions of %s: %w", addr, err)
			}
		}
		states[addr] = cosiserver.NewState(st)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes, f.states = nodes, states
	return nil
}

// node is the node a call targets (metadata "node"), or an error as apid gives.
func (f *TalosAPI) node(ctx context.Context) (string, TalosNode, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	addrs := md.Get("node")
	if len(addrs) != 1 {
		return "", TalosNode{}, grpcstatus.Error(codes.InvalidArgument, "clustertest: want exactly one \"node\" in the metadata")
	}
	f.mu.Lock()
	n, ok := f.nodes[addrs[0]]
	f.mu.Unlock()
	if !ok || n.Unreachable {
		return "", TalosNode{}, grpcstatus.Errorf(codes.Unavailable, "connection error: desc = \"transport: Error while dialing: dial tcp %s:50000: connect: connection refused\"", addrs[0])
	}
	return addrs[0], n, nil
}

type machineServer struct {
	machine.UnimplementedMachineServiceServer
	f *TalosAPI
}

// Version implements machine.MachineServiceServer.
func (m *machineServer) Version(ctx context.Context, _ *emptypb.Empty) (*machine.VersionResponse, error) {
	addr, n, err := m.f.node(ctx)
	if err != nil {
		return nil, err
	}
	return &machine.VersionResponse{Messages: []*machine.Version{{
		Metadata: &common.Metadata{Hostname: addr},
		Version:  &machine.VersionInfo{Tag: n.Version, Arch: "amd64", Sha: "f1e2d3c4"},
		Platform: &machine.PlatformInfo{Name: "nocloud", Mode: "cloud"},
	}}}, nil
}

type stateServer struct {
	cosiapi.UnimplementedStateServer
	f *TalosAPI
}

// Get implements the COSI State service for the targeted node.
func (s *stateServer) Get(ctx context.Context, req *cosiapi.GetRequest) (*cosiapi.GetResponse, error) {
	st, err := s.f.state(ctx)
	if err != nil {
		return nil, err
	}
	return st.Get(ctx, req)
}

// List implements the COSI State service for the targeted node.
func (s *stateServer) List(req *cosiapi.ListRequest, srv cosiapi.State_ListServer) error {
	st, err := s.f.state(srv.Context())
	if err != nil {
		return err
	}
	return st.List(req, srv)
}

func (f *TalosAPI) state(ctx context.Context) (*cosiserver.State, error) {
	addr, _, err := f.node(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.states[addr], nil
}
