package factory

import (
	"context"
	"fmt"
	"net/http"

	"github.com/siderolabs/image-factory/pkg/client"
)

// Outcomes of a schematic check.
const (
	SchematicOK        = "ok"
	SchematicMissing   = "missing"
	SchematicDifferent = "different"
	// SchematicUnchecked means the factory could not be asked (named with the cause).
	SchematicUnchecked = "unchecked"
)

// SchematicCheck is what the factory answered for one schematic ID.
type SchematicCheck struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// Got is the ID the served content hashes to, when it is not ID.
	Got    string `json:"got,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// CheckSchematic asks the factory for a schematic (GET /schematics/<id>) and checks
// that the content it serves hashes to that ID. It only reads: a lost schematic is
// reported missing, not pushed again (that is `imgpipe schematic push`).
func (c *Client) CheckSchematic(ctx context.Context, id string) SchematicCheck {
	sc := SchematicCheck{ID: id}
	got, err := c.api.SchematicGet(ctx, id)
	switch {
	case client.IsHTTPErrorCode(err, http.StatusNotFound):
		sc.Status, sc.Detail = SchematicMissing, fmt.Sprintf("%s does not know it (404)", c.base.Redacted())
		return sc
	case err != nil:
		sc.Status, sc.Detail = SchematicUnchecked, fmt.Sprintf("getting schematic from %s: %v", c.base.Redacted(), err)
		return sc
	}
	gotID, err := got.ID()
	if err != nil {
		sc.Status, sc.Detail = SchematicUnchecked, fmt.Sprintf("computing the ID of the served schematic: %v", err)
		return sc
	}
	if gotID != id {
		sc.Status, sc.Got = SchematicDifferent, gotID
		sc.Detail = "the factory serves content with another ID"
		return sc
	}
	sc.Status, sc.Detail = SchematicOK, "GET /schematics/"+id+" served content with this ID"
	return sc
}
