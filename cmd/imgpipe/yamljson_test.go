package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

// sameData decodes the YAML and the JSON into plain values and compares them.
func sameData(t *testing.T, raw []byte, y []byte) {
	t.Helper()
	var want, back any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Skip("not JSON")
	}
	var fromYAML any
	if err := yaml.Unmarshal(y, &fromYAML); err != nil {
		t.Fatalf("writeYAML output does not parse: %v\n%s", err, y)
	}
	// Through JSON again, so numbers compare alike (yaml gives int, JSON float64).
	again, err := json.Marshal(fromYAML)
	if err != nil {
		t.Fatalf("json.Marshal(yaml value): %v", err)
	}
	if err := json.Unmarshal(again, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, back) {
		t.Errorf("writeYAML(%s) reads back as\n%s\nwant the same data as the JSON\n%s", raw, again, raw)
	}
}

func TestWriteYAMLRoundTrip(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(upgradeTestdata, "golden", "cli-cluster-v1.10.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{raw, []byte(`{"a":[],"b":{},"c":[[1,"x"],{"d":null}],"e":"true","f":"1.30","g":"a: b","h":"-x","i":" lead","j":"x #y"}`)} {
		var v any
		if err := json.Unmarshal(in, &v); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := writeYAML(&buf, v); err != nil {
			t.Fatal(err)
		}
		sameData(t, in, buf.Bytes())
	}
}

func FuzzWriteYAML(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join(upgradeTestdata, "golden", "cli-cluster-v1.10.json"))
	if err != nil {
		f.Fatal(err)
	}
	var plan map[string]any
	if err := json.Unmarshal(raw, &plan); err != nil {
		f.Fatal(err)
	}
	small, _ := json.Marshal(map[string]any{"schema": plan["schema"], "from": plan["from"], "notes": plan["notes"]})
	f.Add(small)
	f.Add([]byte(`{"a":["1.2","yes","0x1F","1e3",".5","~","x: y","é","a\nb"],"b":[{"c":{}}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var v any
		if json.Unmarshal(in, &v) != nil {
			return
		}
		var buf bytes.Buffer
		if err := writeYAML(&buf, v); err != nil {
			t.Fatal(err)
		}
		sameData(t, in, buf.Bytes())
	})
}
