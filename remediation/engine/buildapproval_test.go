package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// TestLargeBuildWaitsForApproval: a reindex of an index over approve_builds_over waits for a
// person with its impact and the reason recorded, and nothing is rebuilt until then; once
// approved it runs. An entry that lifts the limit rebuilds the same index on its own, and a
// step that builds nothing (vacuum) is never held by it.
func TestLargeBuildWaitsForApproval(t *testing.T) {
	b := setup(t)
	rb := b.parseRunbook(t, `
defaults:
  approve_builds_over: {size: 1kB}
entries:
  - name: rebuild
    matchers: ['alertname="VecTest"']
    cooldown: 0s
    steps:
      - strategy: reindex
  - name: rebuild-any-size
    matchers: ['alertname="VecTestUnlimited"']
    cooldown: 0s
    approve_builds_over: {size: 0}
    steps:
      - strategy: reindex
  - name: vacuum
    matchers: ['alertname="VecTestVacuum"']
    cooldown: 0s
    steps:
      - strategy: vacuum
`)
	e := b.engine(t, rb, nil)
	before, err := catalog.Resolve(b.ctx, b.target, "public", "t_v_idx")
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"datname": b.datname(t)}
	b.notify(t, e, alert("VecTest", "firing", time.Now(), labels))
	rs := b.waitRepairs(t, 1, "awaiting_approval")
	r, err := e.Repair(b.ctx, rs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 1 || r.Steps[0].State != "planned" || !strings.Contains(r.Steps[0].Error, "over approve_builds_over.size 1kB") {
		t.Fatalf("repair %s (%s), steps %+v: want the reindex planned, waiting with the size named", r.State, r.Reason, r.Steps)
	}
	if now, err := catalog.Resolve(b.ctx, b.target, "public", "t_v_idx"); err != nil || now.OID != before.OID {
		t.Fatalf("index %+v (%v): rebuilt before the approval", now, err)
	}

	if err := e.Approve(b.ctx, r.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	rs = b.waitRepairs(t, 1, "succeeded")
	if rs[0].Approved != "alice" {
		t.Fatalf("repair %+v: want it approved by alice", rs[0])
	}

	b.notify(t, e, alert("VecTestUnlimited", "firing", time.Now(), labels))
	b.waitRepairs(t, 2, "succeeded")
	b.notify(t, e, alert("VecTestVacuum", "firing", time.Now(), labels))
	rs = b.waitRepairs(t, 3, "succeeded")
	for _, r := range rs[1:] {
		if r.Approved != "" {
			t.Errorf("repair %+v was approved by someone; the lifted limit and the vacuum need no approval", r)
		}
	}
}
