package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cosi-project/runtime/pkg/safe"
	"github.com/siderolabs/talos/pkg/machinery/client"
	"github.com/siderolabs/talos/pkg/machinery/resources/runtime"
	"golang.org/x/sync/errgroup"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// Talos reads running versions and installed extensions from the Talos API, through
// the talosconfig's endpoints, one node at a time per request (apid proxies to it).
type Talos struct {
	c           *client.Client
	parallel    int
	nodeTimeout time.Duration
}

// TalosOption configures a Talos reader.
type TalosOption func(*Talos)

// WithParallel bounds the nodes read at once (default 16).
func WithParallel(n int) TalosOption { return func(t *Talos) { t.parallel = max(n, 1) } }

// WithNodeTimeout bounds the reads of one node (default 20s).
func WithNodeTimeout(d time.Duration) TalosOption { return func(t *Talos) { t.nodeTimeout = d } }

// NewTalos opens a client from a talosconfig file (its current context). It does not
// connect yet. Errors wrap fail.ErrUsage.
func NewTalos(ctx context.Context, talosconfig string, opts ...TalosOption) (*Talos, error) {
	c, err := client.New(ctx, client.WithConfigFromFile(talosconfig))
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("talosconfig %s: %w", talosconfig, err))
	}
	t := &Talos{c: c, parallel: 16, nodeTimeout: 20 * time.Second}
	for _, o := range opts {
		o(t)
	}
	return t, nil
}

// Close releases the connection.
func (t *Talos) Close() error { return t.c.Close() }

// NodeError names a node the Talos API could not answer for.
type NodeError struct {
	Node, Address string
	Err           error
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("node %s (%s): %v", e.Node, e.Address, e.Err)
}

func (e *NodeError) Unwrap() []error { return []error{e.Err, ErrUnreachable} }

// Enrich sets each node's Talos version (TalosFromAPI) and Extensions from the
// Talos API. Nodes it cannot read are all named in the error (each a *NodeError,
// wrapping ErrUnreachable); the nodes it could read are updated anyway.
func (t *Talos) Enrich(ctx context.Context, nodes []Node) error {
	errs := make([]error, len(nodes))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(t.parallel)
	for i := range nodes {
		g.Go(func() error {
			if err := t.readNode(gctx, &nodes[i]); err != nil {
				errs[i] = &NodeError{Node: nodes[i].Name, Address: nodes[i].Address, Err: err}
			}
			return nil
		})
	}
	_ = g.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("reading %d node(s) from the Talos API (%v):\n%w", len(failed), t.c.GetEndpoints(), Bounded(failed, 10))
	}
	return nil
}

func (t *Talos) readNode(ctx context.Context, n *Node) error {
	ctx, cancel := context.WithTimeout(client.WithNode(ctx, n.Address), t.nodeTimeout)
	defer cancel()
	v, err := t.c.Version(ctx)
	if err != nil {
		return fmt.Errorf("version: %w", err)
	}
	if len(v.GetMessages()) == 0 || v.GetMessages()[0].GetVersion().GetTag() == "" {
		return errors.New("version: the answer carries no tag")
	}
	tag := v.GetMessages()[0].GetVersion().GetTag()
	if _, err := parseTag(tag); err != nil {
		return fmt.Errorf("version: %w", err)
	}
	exts, err := safe.StateListAll[*runtime.ExtensionStatus](ctx, t.c.COSI)
	if err != nil {
		return fmt.Errorf("listing extensions: %w", err)
	}
	n.Extensions = []Extension{}
	for e := range exts.All() {
		md := e.TypedSpec().Metadata
		n.Extensions = append(n.Extensions, Extension{Name: md.Name, Version: md.Version, Image: e.TypedSpec().Image})
	}
	n.Talos, n.TalosFromAPI = tag, true
	return nil
}

func parseTag(tag string) (string, error) {
	if m := talosImageRE.FindStringSubmatch("Talos (" + tag + ")"); m != nil {
		return m[1], nil
	}
	return "", fmt.Errorf("tag %q is not a Talos version", tag)
}
