package strictyaml

import (
	"testing"
)

type doc struct {
	Name  string `yaml:"name"`
	Count int    `yaml:"count"`
}

func TestKeyErrors(t *testing.T) {
	var d doc
	_, err := Decode("f.yml", []byte("name: x\nextra: 1\ncount: many\n"), &d)
	errs, ok := KeyErrors(err)
	if !ok || len(errs) != 2 {
		t.Fatalf("KeyErrors(%v) = %d errors, ok %v; want 2, true", err, len(errs), ok)
	}
	if errs[0].Path != "extra" || errs[0].Line != 2 || errs[1].Path != "count" || errs[1].Line != 3 {
		t.Errorf("errors %v, %v", errs[0], errs[1])
	}
	if d.Name != "x" {
		t.Errorf("the rest of the document was not decoded: %+v", d)
	}
	for _, in := range []string{"", "name: [\n", "a: 1\n---\nb: 2\n", "- 1\n"} {
		_, err := Decode("f.yml", []byte(in), &doc{})
		if _, ok := KeyErrors(err); ok || err == nil {
			t.Errorf("%q: error %v counted as a key's", in, err)
		}
	}
	if errs, ok := KeyErrors(nil); !ok || errs != nil {
		t.Error("KeyErrors(nil)")
	}
}
