package testenv

import (
	"fmt"
	"os"
	"strings"
)

// DocSQL returns the statements of the first n ```sql blocks of the section "## title" of the
// Markdown file path, each block passed through r (names replaced for a test's database and
// roles) and split at semicolons, comment lines left out: tests that grant what the docs tell
// operators to grant read it from the docs themselves.
func DocSQL(path, title string, n int, r *strings.Replacer) ([]string, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	_, sec, ok := strings.Cut(string(doc), "\n## "+title+"\n")
	if !ok {
		return nil, fmt.Errorf("%s has no section %q", path, title)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var stmts []string
	for i := range n {
		_, block, ok := strings.Cut(sec, "```sql\n")
		if !ok {
			return nil, fmt.Errorf("%s: section %q has %d sql blocks, want %d", path, title, i, n)
		}
		block, sec, _ = strings.Cut(block, "```")
		var lines []string
		for _, l := range strings.Split(block, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				lines = append(lines, l)
			}
		}
		for _, st := range strings.Split(r.Replace(strings.Join(lines, "\n")), ";") {
			if st = strings.TrimSpace(st); st != "" {
				stmts = append(stmts, st)
			}
		}
	}
	return stmts, nil
}
