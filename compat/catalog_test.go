package compat_test

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/imgpipe/imgpipe/internal/testutil"
)

// catalogRow is one (release, extension) row of the official catalog, as copied into
// ../testdata/extensions-catalog.tsv from shared/reference/extensions-catalog.
type catalogRow struct {
	Release, Status, Name, Ref, Tier, Digest string
}

const catalogTSV = "../testdata/extensions-catalog.tsv"

var catalogRows = sync.OnceValues(func() ([]catalogRow, error) { return readCatalogRows(catalogTSV) })

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
	rows, err := catalogRows()
	if err != nil || len(rows) == 0 {
		t.Fatalf("reading %s: %d rows, %v", catalogTSV, len(rows), err)
	}
	return rows
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

// TestCatalogRowsMatchReference keeps ../testdata/extensions-catalog.tsv equal to
// the reference catalog when the reference is beside the clone.
func TestCatalogRowsMatchReference(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(testutil.ReferencePath(t, "extensions-catalog/extensions-catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Releases []struct {
			Talos      string `yaml:"talos"`
			Status     string `yaml:"status"`
			Extensions []struct {
				Name, Ref, Tier, Digest string
			} `yaml:"extensions"`
		} `yaml:"releases"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var want []catalogRow
	for _, r := range doc.Releases {
		for _, e := range r.Extensions {
			d := e.Digest
			if d == "" {
				d = "-"
			}
			want = append(want, catalogRow{r.Talos, r.Status, e.Name, e.Ref, e.Tier, d})
		}
	}
	if got := mustCatalog(t); !slices.Equal(got, want) {
		t.Errorf("%s (%d rows) differs from the reference catalog (%d rows): copy it again", catalogTSV, len(got), len(want))
	}
}
