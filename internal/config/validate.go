package config

import (
	"fmt"
	"path"
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
