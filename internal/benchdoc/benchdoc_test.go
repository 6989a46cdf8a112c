package benchdoc

import "testing"

func TestReplace(t *testing.T) {
	m := Markers{"<!-- x:begin -->", "<!-- x:end -->"}
	doc := "intro\n" + m.Begin + "\nold\n" + m.End + "\nafter\n"
	got, err := m.Replace(doc, "new\n")
	if want := "intro\n" + m.Begin + "\nnew\n" + m.End + "\nafter\n"; err != nil || got != want {
		t.Errorf("Replace = %q, %v; want %q", got, err, want)
	}
	if _, err := m.Replace("no markers", "x"); err == nil {
		t.Error("a document without markers was accepted")
	}
	if _, err := m.Replace(m.End+"\n"+m.Begin, "x"); err == nil {
		t.Error("markers in the wrong order were accepted")
	}
}

func TestMakeCommand(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-vectorheal", "bin/vectorheal", "-duration", "5m", "--root=.", "-write-docs"}, "make soak SOAK_FLAGS='-duration 5m -write-docs'"},
		{[]string{"-vectorheal=bin/vectorheal"}, "make soak"},
		{nil, "make soak"},
	} {
		if got := MakeCommand("soak", "SOAK_FLAGS", c.args, "vectorheal", "root"); got != c.want {
			t.Errorf("MakeCommand(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}
