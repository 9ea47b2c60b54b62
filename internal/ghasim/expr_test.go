package ghasim

import (
	"errors"
	"testing"
)

func testCtx() *exprCtx {
	return &exprCtx{status: "success", contexts: map[string]any{
		"inputs":  map[string]any{"force": true, "talos": "v1.9.x"},
		"github":  map[string]any{"event_name": "schedule", "event": map[string]any{"inputs": map[string]any{"force": "true"}}},
		"needs":   map[string]any{"refresh": map[string]any{"result": "success", "outputs": map[string]any{"changed": "true"}}},
		"steps":   map[string]any{"drift": map[string]any{"outputs": map[string]any{"talos": "v1.9.6"}}},
		"runner":  map[string]any{"temp": "/tmp/r"},
		"secrets": map[string]any{},
	}}
}

func TestEval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want any
	}{
		{"needs.refresh.outputs.changed == 'true'", true},
		{"needs.refresh.outputs.changed == 'TRUE'", true}, // strings compare case-insensitively
		{"needs.refresh.outputs.changed == true", false},  // 'true' coerces to NaN
		{"inputs.force", true},
		{"inputs.force == true", true},
		{"github.event.inputs.force == 'true'", true},
		{"github.event_name == 'workflow_dispatch' && inputs.talos", false},
		{"github.event_name == 'schedule' && inputs.talos", "v1.9.x"},
		{"secrets.MISSING || 'fallback'", "fallback"},
		{"steps.drift.outputs.talos", "v1.9.6"},
		{"steps['drift'].outputs['talos']", "v1.9.6"},
		{"runner.temp", "/tmp/r"},
		{"!(1 == 2)", true},
		{"contains('abc', 'B')", true},
		{"startsWith(steps.drift.outputs.talos, 'v1.9')", true},
		{"format('{0}-{1}', 'a', 2)", "a-2"},
		{"'it''s'", "it's"},
		{"0 == ''", true}, // both coerce to 0
		{"null == 0", true},
		{"needs.nothing.outputs.x", nil},
	}
	for _, tt := range tests {
		got, err := testCtx().Eval(tt.expr)
		if err != nil || got != tt.want {
			t.Errorf("Eval(%q) = %v, %v; want %v", tt.expr, got, err, tt.want)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	t.Parallel()
	for _, expr := range []string{"a ==", "(a", "'open", "toJSON(a)", "a $ b", "a.", "f(a b)"} {
		if _, err := testCtx().Eval(expr); !errors.Is(err, ErrExpr) {
			t.Errorf("Eval(%q) error = %v; want ErrExpr", expr, err)
		}
	}
}

func TestCondition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cond, status string
		want         bool
	}{
		{"", "success", true},
		{"", "failure", false},
		{"always()", "failure", true},
		{"${{ always() }}", "failure", true},
		{"failure()", "failure", true},
		{"needs.refresh.outputs.changed == 'true'", "failure", false}, // implicit success()
		{"${{ needs.refresh.outputs.changed == 'true' }}", "success", true},
	}
	for _, tt := range tests {
		c := testCtx()
		c.status = tt.status
		got, err := c.Condition(tt.cond)
		if err != nil || got != tt.want {
			t.Errorf("Condition(%q) with status %s = %v, %v; want %v", tt.cond, tt.status, got, err, tt.want)
		}
	}
}

func TestInterpolate(t *testing.T) {
	t.Parallel()
	got, err := testCtx().Interpolate("cp x ${{ runner.temp }}/d.md # ${{ inputs.force }}${{ secrets.X }}")
	if want := "cp x /tmp/r/d.md # true"; err != nil || got != want {
		t.Errorf("Interpolate = %q, %v; want %q", got, err, want)
	}
	if _, err := testCtx().Interpolate("${{ x"); !errors.Is(err, ErrExpr) {
		t.Errorf("Interpolate(unterminated) error = %v; want ErrExpr", err)
	}
}

func FuzzEval(f *testing.F) {
	for _, s := range []string{"needs.a.outputs.b == 'true'", "!(a || b) && c[0]", "format('{0}', 1.5)", "contains(x, 'y')"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = testCtx().Eval(s) // must not panic or loop
	})
}
