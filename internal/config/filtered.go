package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// FilteredQuery is a representative filtered search of one index: the application's own SQL,
// run with a query vector and filter values sampled from the index's table, through the index
// and exactly, to see whether filtered queries come back short of k rows or with poor recall.
type FilteredQuery struct {
	// Name identifies the query set in metrics (label query). Required, unique, a label-value
	// safe word ([a-zA-Z_][a-zA-Z0-9_]*).
	Name string `yaml:"name"`
	// Schema of the index. Default "public".
	Schema string `yaml:"schema"`
	// Index the query is meant to use; its figures carry this index's labels. Required.
	Index string `yaml:"index"`
	// SQL is one SELECT statement: $1 is the query vector (sampled from the indexed column),
	// $2 … $N+1 the values of Filters in order (sampled from one row of the table), and $N+2
	// is K (the LIMIT). Each parameter is used, and no other. Required.
	SQL string `yaml:"sql"`
	// Filters are the columns of the index's table whose values, read from a sampled row, are
	// passed as $2 … $N+1. Resolved against the catalog when the query runs. At least one.
	Filters []string `yaml:"filters"`
	// K is the number of rows asked for. Default 10, at most 1000.
	K int `yaml:"k"`
	// Samples is how many filtered queries one run issues (each with its own vector and filter
	// values). Default 10, at most 1000.
	Samples int `yaml:"samples"`
	// Targets limits the query to these target names; empty means every target with the index.
	Targets []string `yaml:"targets"`
	// Interval between runs. Default 5m.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one run: the statement_timeout of its queries and the bound of the whole
	// run. Default 1m.
	Timeout time.Duration `yaml:"timeout"`
}

// Params is the number of parameters the query's SQL takes: the vector, the filters and k.
func (q FilteredQuery) Params() int { return len(q.Filters) + 2 }

// maxFilteredSamples bounds samples and k: each sample runs the query twice, once exactly.
const maxFilteredSamples = 1000

func (q *FilteredQuery) setDefaults() {
	if q.Schema == "" {
		q.Schema = "public"
	}
	defInt(&q.K, 10)
	defInt(&q.Samples, 10)
	defDur(&q.Interval, 5*time.Minute)
	defDur(&q.Timeout, time.Minute)
}

func validateFilteredQueries(v *validator, qs []FilteredQuery, targets map[string]bool) {
	seen := map[string]bool{}
	for i, q := range qs {
		p := v.index("exporter.filtered_queries", i)
		v.uniqueName(p+".name", q.Name, labelNameRE, "a plain name ([a-zA-Z_][a-zA-Z0-9_]*)", seen)
		if q.Index == "" {
			v.errorf(p+".index", "must be set")
		}
		if len(q.Filters) == 0 {
			v.errorf(p+".filters", "at least one filter column is required (a query without a filter is what exporter.recall measures)")
		}
		cols := map[string]bool{}
		for j, c := range q.Filters {
			switch {
			case c == "":
				v.errorf(v.index(p+".filters", j), "must be a column name")
			case cols[c]:
				v.errorf(v.index(p+".filters", j), "column %q is given twice", c)
			}
			cols[c] = true
		}
		if q.SQL == "" {
			v.errorf(p+".sql", "must be set")
		} else if err := CheckFilteredSQL(q.SQL, q.Params()); err != nil {
			v.errorf(p+".sql", "%v", err)
		}
		v.positive(p+".k", q.K)
		v.positive(p+".samples", q.Samples)
		if q.K > maxFilteredSamples {
			v.errorf(p+".k", "%d is above the limit of %d", q.K, maxFilteredSamples)
		}
		if q.Samples > maxFilteredSamples {
			v.errorf(p+".samples", "%d is above the limit of %d", q.Samples, maxFilteredSamples)
		}
		for j, t := range q.Targets {
			if !targets[t] {
				v.errorf(v.index(p+".targets", j), "no target is named %q", t)
			}
		}
		if q.Interval <= 0 {
			v.errorf(p+".interval", "must be positive")
		}
		if q.Timeout <= 0 {
			v.errorf(p+".timeout", "must be positive")
		} else if q.Timeout > q.Interval && q.Interval > 0 {
			v.errorf(p+".timeout", "%s is longer than the interval %s", q.Timeout, q.Interval)
		}
	}
}

// CheckFilteredSQL checks, without a database, that sql is a single SELECT (or WITH … SELECT)
// statement whose parameters are exactly $1 … $params, each used at least once. It reads the
// text as PostgreSQL's lexer does for what matters here: quoted strings ('…', E'…' with
// backslash escapes, "…" identifiers, $tag$…$tag$), -- and nested /* */ comments. One trailing
// semicolon is accepted. The server refuses several statements with parameters anyway; this
// check gives the error with the file and line instead of at run time.
func CheckFilteredSQL(sql string, params int) error {
	used := map[int]bool{}
	first := ""
	statementEnded := false
	s := sql
	for i := 0; i < len(s); {
		j, err := skipBlank(s, i)
		if err != nil {
			return err
		}
		if j > i || j >= len(s) {
			i = j
			continue
		}
		if statementEnded {
			return fmt.Errorf("must be a single statement: text follows the ';' at offset %d", strings.LastIndexByte(s[:i], ';'))
		}
		tok, err := nextToken(s, i)
		if err != nil {
			return err
		}
		switch {
		case s[i] == ';':
			statementEnded = true
		case tok.isParam:
			used[tok.param] = true
		case tok.word != "" && first == "":
			first = strings.ToUpper(tok.word)
		}
		i = tok.end
	}
	if first != "SELECT" && first != "WITH" {
		if first == "" {
			return fmt.Errorf("holds no statement")
		}
		return fmt.Errorf("must be a SELECT (or WITH … SELECT) query, not %s", first)
	}
	return checkParams(used, params)
}

// skipBlank returns the offset after the whitespace and comments (-- to the end of the line,
// nested /* */) at offset i of s; i when there are none.
func skipBlank(s string, i int) (int, error) {
	switch c := s[i]; {
	case c == '-' && strings.HasPrefix(s[i:], "--"):
		end := strings.IndexByte(s[i:], '\n')
		if end < 0 {
			return len(s), nil
		}
		return i + end + 1, nil
	case c == '/' && strings.HasPrefix(s[i:], "/*"):
		depth, j := 1, i+2
		for j < len(s) && depth > 0 {
			switch {
			case strings.HasPrefix(s[j:], "/*"):
				depth, j = depth+1, j+2
			case strings.HasPrefix(s[j:], "*/"):
				depth, j = depth-1, j+2
			default:
				j++
			}
		}
		if depth > 0 {
			return 0, fmt.Errorf("unterminated /* comment")
		}
		return j, nil
	case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
		return i + 1, nil
	}
	return i, nil
}

// sqlToken is one token of a statement's text as far as CheckFilteredSQL cares: a word
// (keyword or identifier), a parameter $n, or anything else (a quoted string, a symbol).
type sqlToken struct {
	end     int    // offset after the token
	word    string // the word, for a word
	isParam bool
	param   int // n of $n (at most 1<<20)
}

// nextToken reads the token at offset i of s, which is not blank.
func nextToken(s string, i int) (sqlToken, error) {
	c := s[i]
	switch {
	case c == '\'':
		j, err := skipQuoted(s, i, '\'', false)
		return sqlToken{end: j}, err
	case (c == 'E' || c == 'e') && i+1 < len(s) && s[i+1] == '\'' && !identByte(prev(s, i)):
		j, err := skipQuoted(s, i+1, '\'', true)
		return sqlToken{end: j}, err
	case c == '"':
		j, err := skipQuoted(s, i, '"', false)
		return sqlToken{end: j}, err
	case c == '$' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' && !identByte(prev(s, i)):
		j, n := i+1, 0
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			n = min(n*10+int(s[j]-'0'), 1<<20)
			j++
		}
		return sqlToken{end: j, isParam: true, param: n}, nil
	case c == '$' && !identByte(prev(s, i)):
		// A dollar-quoted string: $tag$ … $tag$, the tag an identifier or empty.
		j := i + 1
		for j < len(s) && identByte(s[j]) && !(j == i+1 && s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j >= len(s) || s[j] != '$' {
			return sqlToken{end: j}, nil
		}
		tag := s[i : j+1]
		end := strings.Index(s[j+1:], tag)
		if end < 0 {
			return sqlToken{}, fmt.Errorf("unterminated dollar-quoted string %s", tag)
		}
		return sqlToken{end: j + 1 + end + len(tag)}, nil
	case identByte(c):
		j := i
		for j < len(s) && identByte(s[j]) {
			j++
		}
		return sqlToken{end: j, word: s[i:j]}, nil
	}
	return sqlToken{end: i + 1}, nil
}

// checkParams says which of $1 … $params the query does not use, or which it uses beyond them.
func checkParams(used map[int]bool, params int) error {
	var missing, extra []string
	for n := 1; n <= params; n++ {
		if !used[n] {
			missing = append(missing, fmt.Sprintf("$%d (%s)", n, paramRole(n, params)))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(used)) {
		if n < 1 || n > params {
			extra = append(extra, fmt.Sprintf("$%d", n))
		}
	}
	switch {
	case len(extra) > 0:
		return fmt.Errorf("uses %s, but the query takes only $1 … $%d ($1 the vector, $2 … $%d the filters in order, $%d k)",
			strings.Join(extra, ", "), params, params-1, params)
	case len(missing) > 0:
		return fmt.Errorf("does not use %s", strings.Join(missing, ", "))
	}
	return nil
}

func paramRole(n, params int) string {
	switch n {
	case 1:
		return "the query vector"
	case params:
		return "k, the LIMIT"
	}
	return fmt.Sprintf("filter %d", n-1)
}

// skipQuoted returns the offset after the quoted text starting at s[i] (the opening quote q);
// a doubled quote is an escaped one, and with backslash so is \q.
func skipQuoted(s string, i int, q byte, backslash bool) (int, error) {
	for j := i + 1; j < len(s); j++ {
		switch {
		case backslash && s[j] == '\\':
			j++
		case s[j] == q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1, nil
		}
	}
	if q == '"' {
		return 0, fmt.Errorf("unterminated quoted identifier at offset %d", i)
	}
	return 0, fmt.Errorf("unterminated string at offset %d", i)
}

func identByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

func prev(s string, i int) byte {
	if i == 0 {
		return ' '
	}
	return s[i-1]
}
