package runbook

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestSchemaMatchesParser keeps docs/runbook.schema.json in step with the keys Parse accepts:
// every object of the file format has the same property names in both.
func TestSchemaMatchesParser(t *testing.T) {
	data, err := os.ReadFile("../../docs/runbook.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema["$defs"].(map[string]any)
	// resolve follows a $ref, and into array items.
	var resolve func(n map[string]any) map[string]any
	resolve = func(n map[string]any) map[string]any {
		if ref, ok := n["$ref"].(string); ok {
			return resolve(defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any))
		}
		if items, ok := n["items"].(map[string]any); ok {
			return resolve(items)
		}
		return n
	}
	props := func(n map[string]any) map[string]any {
		p, _ := resolve(n)["properties"].(map[string]any)
		return p
	}
	top := props(schema)
	defaults := props(top["defaults"].(map[string]any))
	entry := props(top["entries"].(map[string]any))
	step := props(entry["steps"].(map[string]any))
	cases := []struct {
		name  string
		typ   any
		props map[string]any
	}{
		{"file", fileYAML{}, top},
		{"defaults", defaultsYAML{}, defaults},
		{"defaults.validate", validateDefaults{}, props(defaults["validate"].(map[string]any))},
		{"entry", entryYAML{}, entry},
		{"step", stepYAML{}, step},
		{"step.validate", validateYAML{}, props(step["validate"].(map[string]any))},
		{"window", windowYAML{}, props(entry["windows"].(map[string]any))},
	}
	for _, c := range cases {
		var want []string
		rt := reflect.TypeOf(c.typ)
		for i := 0; i < rt.NumField(); i++ {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
			want = append(want, name)
		}
		var got []string
		for k := range c.props {
			got = append(got, k)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: schema has %v, parser takes %v", c.name, got, want)
		}
	}
}
