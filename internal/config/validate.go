package config

import (
	"fmt"
	"path"
	"regexp"
	"time"

	"github.com/vectorheal/vectorheal/internal/strictyaml"
)

// validator collects validation errors, each pointing at the line of its key.
type validator struct {
	file string
	pos  strictyaml.Positions
	errs []error
}

func (v *validator) errorf(p, format string, args ...any) {
	v.errs = append(v.errs, strictyaml.Errorf(v.file, v.pos, p, format, args...))
}

func (v *validator) positive(p string, n int) {
	if n <= 0 {
		v.errorf(p, "must be positive, got %d", n)
	}
}

// uniqueName checks the name at path p: set, matching re (what says what re accepts) and not
// among seen, to which it is added.
func (v *validator) uniqueName(p, name string, re *regexp.Regexp, what string, seen map[string]bool) {
	switch {
	case name == "":
		v.errorf(p, "must be set")
	case !re.MatchString(name):
		v.errorf(p, "%q is not %s", name, what)
	case seen[name]:
		v.errorf(p, "%q is defined twice", name)
	}
	seen[name] = true
}

func (v *validator) index(p string, i int) string { return fmt.Sprintf("%s[%d]", p, i) }

func pathMatchCheck(pattern string) (bool, error) { return path.Match(pattern, "") }

func defInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

func defDur(p *time.Duration, d time.Duration) {
	if *p == 0 {
		*p = d
	}
}

func defCheck(c *Check, interval, timeout time.Duration) {
	defDur(&c.Interval, interval)
	defDur(&c.Timeout, timeout)
}
