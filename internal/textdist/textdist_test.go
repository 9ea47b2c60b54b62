package textdist

import "testing"

func TestLevenshtein(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"zfs", "", 3},
		{"", "gpu", 3},
		{"drdb", "drbd", 2},
		{"worker", "workers", 1},
		{"nfsd", "nfs-utils", 6},
		{"gpu", "gpu", 0},
	}
	for _, tt := range tests {
		if got := Levenshtein(tt.a, tt.b); got != tt.want {
			t.Errorf("Levenshtein(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
