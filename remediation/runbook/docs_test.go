package runbook

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vectorheal/vectorheal/remediation/strategy"
)

var update = flag.Bool("update", false, "rewrite docs/runbook.schema.json and the strategy table of docs/runbook.md from the strategies' specs")

const (
	schemaFile = "../../docs/runbook.schema.json"
	docFile    = "../../docs/runbook.md"
	tableBegin = "<!-- strategies:begin (generated from the strategies' specs: go test ./remediation/runbook -run TestGeneratedDocs -update) -->\n"
	tableEnd   = "<!-- strategies:end -->\n"
)

// TestGeneratedDocs fails when the strategy parts of docs/runbook.schema.json or the strategy
// table of docs/runbook.md differ from what the registered strategies' specs say; -update
// rewrites them.
func TestGeneratedDocs(t *testing.T) {
	reg, err := strategy.Default(strategy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	specs := reg.Specs()
	for _, g := range []struct {
		file string
		gen  func([]byte, []strategy.Spec) ([]byte, error)
	}{{schemaFile, generateSchema}, {docFile, generateTable}} {
		old, err := os.ReadFile(g.file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := g.gen(old, specs)
		if err != nil {
			t.Fatalf("%s: %v", g.file, err)
		}
		if bytes.Equal(old, got) {
			continue
		}
		if *update {
			if err := os.WriteFile(g.file, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s is stale: run go test ./remediation/runbook -run TestGeneratedDocs -update", g.file)
	}
}

// generateTable replaces the table between the markers of docs/runbook.md.
func generateTable(doc []byte, specs []strategy.Spec) ([]byte, error) {
	before, rest, ok := bytes.Cut(doc, []byte(tableBegin))
	if !ok {
		return nil, fmt.Errorf("no line %q", strings.TrimSpace(tableBegin))
	}
	_, after, ok := bytes.Cut(rest, []byte(tableEnd))
	if !ok {
		return nil, fmt.Errorf("no line %q", strings.TrimSpace(tableEnd))
	}
	var b bytes.Buffer
	b.Write(before)
	b.WriteString(tableBegin)
	b.WriteString("| strategy | what it does | parameters | records by default |\n|---|---|---|---|\n")
	for _, s := range specs {
		desc := s.Description
		if len(s.Methods) > 0 {
			desc += " " + strings.Join(s.Methods, ", ") + " only."
		}
		if s.Has(strategy.RunsUserSQL) {
			desc += " Runs SQL written in the runbook, so it is refused for manual repairs through the API."
		}
		var params []string
		for _, p := range s.Params {
			params = append(params, describeParam(p))
		}
		figs := "—"
		if all := s.AllDefaultFigures(); len(all) > 0 {
			var parts []string
			for _, m := range []string{"", "hnsw", "ivfflat"} {
				fs := s.Figures[m]
				if len(fs) == 0 {
					continue
				}
				prefix := ""
				if m != "" {
					prefix = m + ": "
				}
				parts = append(parts, prefix+"`"+strings.Join(fs, "`, `")+"`")
			}
			figs = strings.Join(parts, "; ")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Name, desc, strings.Join(params, "<br>"), figs)
	}
	b.WriteString(tableEnd)
	b.Write(after)
	return b.Bytes(), nil
}

func describeParam(p strategy.Param) string {
	var attrs []string
	typ := string(p.Type)
	if p.Type == strategy.TypeEnum {
		typ = "`" + strings.Join(p.Enum, "` \\| `") + "`"
	}
	attrs = append(attrs, typ)
	if p.Required {
		attrs = append(attrs, "required")
	}
	if p.Default != "" {
		attrs = append(attrs, "default `"+p.Default+"`")
	}
	switch {
	case p.Min != "" && p.Max != "":
		attrs = append(attrs, p.Min+"–"+p.Max)
	case p.Min != "":
		attrs = append(attrs, "≥ "+p.Min)
	case p.Max != "":
		attrs = append(attrs, "≤ "+p.Max)
	}
	return fmt.Sprintf("`%s` (%s): %s", p.Name, strings.Join(attrs, ", "), p.Doc)
}

// generateSchema replaces, in the schema, the strategy names and the per-strategy parameter
// schemas of a step, keeping everything else (and its key order) as written.
func generateSchema(old []byte, specs []strategy.Spec) ([]byte, error) {
	root, err := parseOrdered(old)
	if err != nil {
		return nil, err
	}
	step := root.get("$defs").get("step")
	if step == nil {
		return nil, fmt.Errorf("no $defs.step")
	}
	var names []any
	for _, s := range specs {
		names = append(names, s.Name)
	}
	quoted := make([]string, len(specs))
	for i, s := range specs {
		quoted[i] = s.Name
	}
	step.get("properties").set("strategy", obj(
		"description", "The repair: "+strings.Join(quoted, ", ")+".",
		"type", "string",
		"enum", names,
	))
	var all []any
	for _, s := range specs {
		props := obj()
		var required []any
		for _, p := range s.Params {
			props.set(p.Name, paramSchema(p))
			if p.Required {
				required = append(required, p.Name)
			}
		}
		params := obj("type", "object", "additionalProperties", false, "properties", props)
		if required != nil {
			params.set("required", required)
		}
		all = append(all, obj(
			"if", obj("properties", obj("strategy", obj("const", s.Name)), "required", []any{"strategy"}),
			"then", obj("properties", obj("params", params)),
		))
	}
	step.set("allOf", all)
	var b bytes.Buffer
	writeOrdered(&b, root, "")
	b.WriteString("\n")
	return b.Bytes(), nil
}

func paramSchema(p strategy.Param) *ordered {
	o := obj()
	num := func(s string) any {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	}
	switch p.Type {
	case strategy.TypeInt, strategy.TypeNumber:
		o.set("type", string(p.Type))
		if p.Min != "" {
			o.set("minimum", num(p.Min))
		}
		if p.Max != "" {
			o.set("maximum", num(p.Max))
		}
		if p.Default != "" {
			o.set("default", num(p.Default))
		}
	case strategy.TypeBool:
		o.set("type", "boolean")
		if p.Default != "" {
			o.set("default", p.Default == "true")
		}
	case strategy.TypeString:
		o.set("type", "string")
	case strategy.TypeEnum:
		var e []any
		for _, v := range p.Enum {
			e = append(e, v)
		}
		o.set("enum", e)
		if p.Default != "" {
			o.set("default", p.Default)
		}
	case strategy.TypeDuration, strategy.TypeSize:
		o.set("$ref", "#/$defs/"+string(p.Type))
		if p.Default != "" {
			o.set("default", p.Default)
		}
	case strategy.TypeFigures:
		o.set("$ref", "#/$defs/figures")
	case strategy.TypeStatements:
		o.set("type", "array")
		if p.Required {
			o.set("minItems", 1)
		}
		o.set("items", obj("$ref", "#/$defs/sqlStatement"))
	case strategy.TypeQuery:
		o.set("$ref", "#/$defs/sqlQuery")
	}
	if p.Doc != "" {
		o.set("description", p.Doc)
	}
	return o
}

// ordered is a JSON object that keeps its keys in the order written.
type ordered struct {
	keys []string
	vals map[string]any
}

func obj(kv ...any) *ordered {
	o := &ordered{vals: map[string]any{}}
	for i := 0; i+1 < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

func (o *ordered) get(k string) *ordered {
	if o == nil {
		return nil
	}
	v, _ := o.vals[k].(*ordered)
	return v
}

func (o *ordered) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func parseOrdered(data []byte) (*ordered, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	o, ok := v.(*ordered)
	if !ok {
		return nil, fmt.Errorf("the schema is not an object")
	}
	return o, nil
}

func parseValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := obj()
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				o.set(k.(string), v)
			}
			_, err := dec.Token()
			return o, err
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token()
			return arr, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	}
	return tok, nil
}

// writeOrdered writes v as json.MarshalIndent with two spaces would, keys in their order.
func writeOrdered(w io.Writer, v any, indent string) {
	inner := indent + "  "
	switch x := v.(type) {
	case *ordered:
		if len(x.keys) == 0 {
			fmt.Fprint(w, "{}")
			return
		}
		fmt.Fprint(w, "{\n")
		for i, k := range x.keys {
			key, _ := json.Marshal(k)
			fmt.Fprintf(w, "%s%s: ", inner, key)
			writeOrdered(w, x.vals[k], inner)
			if i < len(x.keys)-1 {
				fmt.Fprint(w, ",")
			}
			fmt.Fprint(w, "\n")
		}
		fmt.Fprint(w, indent+"}")
	case []any:
		if len(x) == 0 {
			fmt.Fprint(w, "[]")
			return
		}
		fmt.Fprint(w, "[\n")
		for i, e := range x {
			fmt.Fprint(w, inner)
			writeOrdered(w, e, inner)
			if i < len(x)-1 {
				fmt.Fprint(w, ",")
			}
			fmt.Fprint(w, "\n")
		}
		fmt.Fprint(w, indent+"]")
	default:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(x)
		fmt.Fprint(w, strings.TrimSuffix(b.String(), "\n"))
	}
}
