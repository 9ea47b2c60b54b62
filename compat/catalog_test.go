package compat_test

import (
	"bufio"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/imgpipe/imgpipe/internal/testutil"
)

// catalogRow is one (release, extension) row of the official catalog, as copyref
// copies it into testdata/reference/extensions-catalog.tsv.
type catalogRow struct {
	Release, Status, Name, Ref, Tier, Digest string
}

const catalogTSV = "extensions-catalog.tsv"

var catalogRows = struct {
	once sync.Once
	rows []catalogRow
	err  error
}{}

func readCatalogRows(path string) ([]catalogRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []catalogRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		c := strings.Split(sc.Text(), "\t")
		if len(c) != 6 {
			continue
		}
		rows = append(rows, catalogRow{c[0], c[1], c[2], c[3], c[4], c[5]})
	}
	return rows, sc.Err()
}

func mustCatalog(t *testing.T) []catalogRow {
	t.Helper()
	path := testutil.ReferencePath(t, catalogTSV)
	catalogRows.once.Do(func() { catalogRows.rows, catalogRows.err = readCatalogRows(path) })
	if rows := catalogRows.rows; catalogRows.err != nil || len(rows) == 0 {
		t.Fatalf("reading %s: %d rows, %v", path, len(rows), catalogRows.err)
	}
	return catalogRows.rows
}

// TestMatrixMatchesCatalog: every release of the official catalog is in the embedded
// matrix with exactly the catalog's extensions, tags and tiers; a catalog digest is the
// matrix's; the predicted (unverified) release stays out of range queries.
func TestMatrixMatchesCatalog(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	byRelease := map[string]map[string]catalogRow{}
	for _, r := range mustCatalog(t) {
		if byRelease[r.Release] == nil {
			byRelease[r.Release] = map[string]catalogRow{}
		}
		byRelease[r.Release][strings.TrimPrefix(r.Name, "siderolabs/")] = r
	}
	if len(byRelease) != 66 {
		t.Errorf("catalog has %d releases; want 66", len(byRelease))
	}
	for v, rows := range byRelease {
		rel, ok := m.Release(v)
		if !ok {
			t.Errorf("catalog release %s is not in the matrix", v)
			continue
		}
		for name, row := range rows {
			got, ok := rel.Extensions[name]
			if !ok {
				t.Errorf("%s %s: in the catalog, not in the matrix", v, name)
				continue
			}
			if ref := "ghcr.io/siderolabs/" + name + ":" + got.Tag; ref != row.Ref {
				t.Errorf("%s %s ref = %s; want %s", v, name, ref, row.Ref)
			}
			if tier := m.Tier(rel, name); tier != row.Tier {
				t.Errorf("%s %s tier = %s; want %s", v, name, tier, row.Tier)
			}
			if row.Digest != "-" && got.Digest != row.Digest {
				t.Errorf("%s %s digest = %s; want %s", v, name, got.Digest, row.Digest)
			}
		}
		for name := range rel.Extensions {
			if _, ok := rows[name]; !ok {
				t.Errorf("%s %s: in the matrix, not in the catalog (invented?)", v, name)
			}
		}
		predicted := false
		for _, row := range rows {
			predicted = row.Status == "predicted-unverified"
		}
		if predicted != rel.Unverified {
			t.Errorf("%s unverified = %v; want %v (catalog status)", v, rel.Unverified, predicted)
		}
	}
}
