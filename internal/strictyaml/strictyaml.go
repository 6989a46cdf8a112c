// Package strictyaml decodes YAML files strictly: an unknown key, a value of the wrong type or
// a malformed document is an error that names the file, the line and the key path, and the
// position of every key is kept so that later validation can point at the same place.
package strictyaml

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Positions maps a key path such as "targets[0].dsn" to the line it was written on.
type Positions map[string]int

// Line returns the line of path, or of its nearest parent that has one, or 0.
func (p Positions) Line(path string) int {
	for path != "" {
		if l, ok := p[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// Error is one problem found in a file.
type Error struct {
	File string
	Line int
	Path string // key path, empty for the document itself
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// KeyErrors returns the problems in err, an error from Decode, when each is tied to a key of a
// document that was read (an unknown key, a wrong type): the rest of the document decoded, so
// a caller may go on checking it and report everything at once. ok is false when err holds a
// problem of the document as a whole (syntax, emptiness, a second document, a wrong root),
// after which nothing was decoded.
func KeyErrors(err error) (errs []*Error, ok bool) {
	if err == nil {
		return nil, true
	}
	var list []error
	if j, isJoin := err.(interface{ Unwrap() []error }); isJoin {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var se *Error
		if !errors.As(e, &se) || se.Path == "" {
			return nil, false
		}
		errs = append(errs, se)
	}
	return errs, true
}

// Errorf builds an Error for path, taking its line from pos.
func Errorf(file string, pos Positions, path, format string, args ...any) *Error {
	return &Error{File: file, Line: pos.Line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

var (
	durationType    = reflect.TypeOf(time.Duration(0))
	modelDurType    = reflect.TypeOf(model.Duration(0))
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// Decode decodes data (read from file, used in messages) into v, a pointer to a struct.
// Every problem found is returned, joined; the positions are returned even on error.
func Decode(file string, data []byte, v any) (Positions, error) {
	pos := Positions{}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return pos, &Error{File: file, Msg: "file is empty"}
		}
		return pos, yamlSyntaxError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return pos, &Error{File: file, Line: extra.Line, Msg: "more than one YAML document; only one is allowed"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d := decoder{file: file, pos: pos}
	d.walk(root, reflect.ValueOf(v).Elem(), "")
	return pos, errors.Join(d.errs...)
}

func yamlSyntaxError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ":"); i > 0 {
			if n, e := strconv.Atoi(rest[:i]); e == nil {
				line = n
				msg = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return &Error{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

type decoder struct {
	file string
	pos  Positions
	errs []error
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) walk(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Tag == "!!null" && n.Kind == yaml.ScalarNode {
		return // an explicit null leaves the default in place
	}
	t := v.Type()
	if t == durationType || t == modelDurType {
		d.duration(n, v, path)
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n, path, "%s", cleanYAMLError(err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.walk(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.pos[p] = c.Line
			d.walk(c, s.Index(i), p)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping, got %s", kindName(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(t))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := reflect.New(t.Key()).Elem()
			if err := k.Decode(key.Addr().Interface()); err != nil {
				d.fail(k, path, "bad key %q: %s", k.Value, cleanYAMLError(err))
				continue
			}
			p := join(path, k.Value)
			d.pos[p] = k.Line
			elem := reflect.New(t.Elem()).Elem()
			d.walk(val, elem, p)
			v.SetMapIndex(key, elem)
		}
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.fail(n, path, "%s", cleanYAMLError(err))
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a %s, got %s", typeName(t), kindName(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n, path, "cannot use %q as %s", n.Value, typeName(t))
		}
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a duration such as 30s or 5m, got %s", kindName(n))
		return
	}
	md, err := model.ParseDuration(n.Value)
	if err != nil {
		td, err2 := time.ParseDuration(n.Value)
		if err2 != nil {
			d.fail(n, path, "cannot use %q as a duration (examples: 30s, 5m, 1h30m, 7d)", n.Value)
			return
		}
		md = model.Duration(td)
	}
	v.SetInt(int64(md))
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := map[string]reflect.Value{}
	var names []string
	collectFields(v, fields, &names)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		f, ok := fields[k.Value]
		if !ok {
			sort.Strings(names)
			d.fail(k, p, "unknown key %q (known keys: %s)", k.Value, strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			d.fail(k, p, "key %q given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		d.pos[p] = k.Line
		d.walk(val, f, p)
	}
}

func collectFields(v reflect.Value, out map[string]reflect.Value, names *[]string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			collectFields(v.Field(i), out, names)
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		out[name] = v.Field(i)
		*names = append(*names, name)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

func cleanYAMLError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			msg = rest[i+2:]
		}
	}
	return msg
}
