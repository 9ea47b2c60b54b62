package factory_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
)

const (
	qemuYAML = "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/qemu-guest-agent\n"
	// Published ID of the qemu-guest-agent-only schematic (reference §3.3).
	qemuID  = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"
	emptyID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
)

func TestSchematicID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"customization: {}\n", emptyID},
		{"{}", emptyID},
		{`{"customization":{"extraKernelArgs":[]}}`, emptyID},
		{"customization:\n  extraKernelArgs:\n    - noapic\n    - nolapic\n", "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c"},
		{qemuYAML, qemuID},
	}
	for _, tt := range tests {
		got, _, err := factory.SchematicID(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("SchematicID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, _, err := factory.SchematicID("customization:\n  systemExtension: {}\n"); err == nil {
		t.Errorf("SchematicID(unknown field) error = nil; want a parse error")
	}
}

func TestEnsureSchematic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     factorytest.Options
		faults   []factorytest.Fault
		yaml     string
		wantID   string
		wantErr  error
		wantText []string
	}{
		{name: "created", yaml: qemuYAML, wantID: qemuID},
		{name: "empty schematic", yaml: "customization: {}\n", wantID: emptyID},
		{name: "legacy factory without schematic in the answer", opts: factorytest.Options{LegacyCreate: true}, yaml: qemuYAML, wantID: qemuID},
		{name: "after a 500 and a 429", faults: []factorytest.Fault{{Status: 500}, {Status: 429, RetryAfter: "0"}}, yaml: qemuYAML, wantID: qemuID},
		{name: "enterprise factory changes the ID", opts: factorytest.Options{Owner: "alice"}, yaml: qemuYAML,
			wantErr: factory.ErrIDMismatch, wantText: []string{qemuID, "returned ID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := factorytest.New(t, tt.opts)
			f.Inject(factorytest.RouteSchematics, tt.faults...)
			c := newClient(t, f)
			got, err := c.EnsureSchematic(t.Context(), tt.yaml)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("EnsureSchematic() error = %v; want %v", err, tt.wantErr)
				}
				for _, s := range tt.wantText {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("EnsureSchematic() error = %q; want it to contain %q", err, s)
					}
				}
				return
			}
			if err != nil || got.ID != tt.wantID {
				t.Fatalf("EnsureSchematic() = %+v, %v; want ID %s", got, err, tt.wantID)
			}
			if !f.HasSchematic(tt.wantID) {
				t.Errorf("factory does not know %s after EnsureSchematic", tt.wantID)
			}
			// Idempotent: a second run confirms the same ID.
			again, err := c.EnsureSchematic(t.Context(), tt.yaml)
			if err != nil || again.ID != tt.wantID {
				t.Errorf("second EnsureSchematic() = %+v, %v; want ID %s", again, err, tt.wantID)
			}
			var gets int
			for _, r := range f.RequestsFor(factorytest.RouteSchematics) {
				if r.Method == "GET" && r.Status == 200 {
					gets++
				}
			}
			if gets < 2 {
				t.Errorf("successful GET /schematics/<id> = %d; want one read-back per ensure", gets)
			}
		})
	}
}

func TestEnsureSchematicInvalid(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{})
	c := newClient(t, f)
	// Owner is valid YAML locally but a community factory refuses it (400).
	_, err := c.EnsureSchematic(t.Context(), "owner: bob\ncustomization: {}\n")
	if !errors.Is(err, factory.ErrInvalidSchematic) {
		t.Fatalf("EnsureSchematic(owner on community factory) error = %v; want ErrInvalidSchematic", err)
	}
	if n := len(f.RequestsFor(factorytest.RouteSchematics)); n != 1 {
		t.Errorf("requests = %d; want 1 (a 400 is not retried)", n)
	}
}
