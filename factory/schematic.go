package factory

import (
	"context"
	"errors"
	"fmt"

	"github.com/siderolabs/image-factory/pkg/client"
	"github.com/siderolabs/image-factory/pkg/schematic"
)

// ErrIDMismatch is returned when the factory's schematic ID differs from the one
// computed locally (an Enterprise factory setting owner, or a server with a
// different serialization): every URL and installer ref built from the local ID
// would 404 later in a rollout.
var ErrIDMismatch = errors.New("schematic ID mismatch")

// ErrInvalidSchematic is returned when the factory rejects a schematic (HTTP 400).
var ErrInvalidSchematic = errors.New("factory rejected the schematic")

// EnsureResult is what EnsureSchematic confirmed for one schematic.
type EnsureResult struct {
	// ID is the schematic ID, equal locally and on the factory.
	ID string `json:"id"`
	// Factory is the factory URL the schematic was pushed to.
	Factory string `json:"factory"`
}

// SchematicID parses schematic YAML (or JSON) and returns its canonical ID, as the
// factory computes it.
func SchematicID(yamlText string) (string, *schematic.Schematic, error) {
	s, err := schematic.Unmarshal([]byte(yamlText))
	if err != nil {
		return "", nil, fmt.Errorf("parsing schematic: %w", err)
	}
	id, err := s.ID()
	if err != nil {
		return "", nil, fmt.Errorf("computing schematic ID: %w", err)
	}
	return id, s, nil
}

// EnsureSchematic makes sure the factory knows the schematic given as YAML, so
// URLs and installer refs built from its ID resolve. It computes the ID locally,
// POSTs the schematic, requires the returned ID to equal the local one
// (ErrIDMismatch, naming both) and GETs it back to confirm its content hashes to
// that ID. The factory deduplicates, so running it again is harmless.
func (c *Client) EnsureSchematic(ctx context.Context, yamlText string) (EnsureResult, error) {
	localID, s, err := SchematicID(yamlText)
	if err != nil {
		return EnsureResult{}, err
	}
	remoteID, _, err := c.api.SchematicCreate(ctx, *s)
	if err != nil {
		if client.IsInvalidSchematicError(err) {
			return EnsureResult{}, fmt.Errorf("creating schematic %s: %w: %w", localID, ErrInvalidSchematic, err)
		}
		return EnsureResult{}, fmt.Errorf("creating schematic %s: %w", localID, err)
	}
	if remoteID != localID {
		return EnsureResult{}, fmt.Errorf("creating schematic: factory %s returned ID %s, local ID is %s: %w (an Enterprise factory adds the owner to the schematic; use IDs from one factory consistently)",
			c.base.Redacted(), remoteID, localID, ErrIDMismatch)
	}
	if err := c.checkSchematic(ctx, localID); err != nil {
		return EnsureResult{}, fmt.Errorf("reading back created schematic: %w", err)
	}
	return EnsureResult{ID: localID, Factory: c.BaseURL()}, nil
}

// checkSchematic GETs a schematic and checks that its content hashes to id.
func (c *Client) checkSchematic(ctx context.Context, id string) error {
	got, err := c.api.SchematicGet(ctx, id)
	if err != nil {
		return fmt.Errorf("getting schematic %s: %w", id, err)
	}
	gotID, err := got.ID()
	if err != nil {
		return fmt.Errorf("getting schematic %s: computing ID: %w", id, err)
	}
	if gotID != id {
		return fmt.Errorf("getting schematic %s: factory serves content with ID %s: %w", id, gotID, ErrIDMismatch)
	}
	return nil
}
