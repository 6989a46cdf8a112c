package strategy

import (
	"strings"
	"testing"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

func TestIsReindexLeftover(t *testing.T) {
	long := strings.Repeat("x", 60)
	ix := catalog.Index{OID: 1, Name: "items_emb"}
	longIx := catalog.Index{OID: 2, Name: long}
	for _, c := range []struct {
		r    relIndex
		ix   catalog.Index
		want bool
	}{
		{relIndex{OID: 9, Name: "items_emb_ccnew"}, ix, true},
		{relIndex{OID: 9, Name: "items_emb_ccnew2"}, ix, true},
		{relIndex{OID: 9, Name: "items_emb_ccold"}, ix, true},
		{relIndex{OID: 9, Name: "items_emb_ccnew", Valid: true}, ix, false},
		{relIndex{OID: 1, Name: "items_emb_ccnew"}, ix, false},
		{relIndex{OID: 9, Name: "items_e_ccnew"}, ix, false}, // another index's leftover
		{relIndex{OID: 9, Name: "items_emb_other"}, ix, false},
		{relIndex{OID: 9, Name: long[:57] + "_ccnew"}, longIx, true}, // shortened by the server
		{relIndex{OID: 9, Name: long[:56] + "_ccnew1"}, longIx, true},
	} {
		if got := isReindexLeftover(c.r, c.ix); got != c.want {
			t.Errorf("isReindexLeftover(%s, %s) = %v, want %v", c.r.Name, c.ix.Name, got, c.want)
		}
	}
}

func TestTempIndexNameFits(t *testing.T) {
	for _, name := range []string{"items_ivf", strings.Repeat("é", 40), strings.Repeat("a", 63)} {
		got := tempIndexName(name, "_vhnew")
		if len(got) > 63 || !strings.HasSuffix(got, "_vhnew") || !strings.HasPrefix(name, strings.TrimSuffix(got, "_vhnew")) {
			t.Errorf("tempIndexName(%q) = %q", name, got)
		}
	}
}
