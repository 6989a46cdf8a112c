package pagescan_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
)

// TestPacedKeepsTheBudget reads 300 pages at 2000 pages per second in batches of 50: the
// scan may not finish before the first 250 pages have had their 125 ms, and it returns every
// page in order.
func TestPacedKeepsTheBudget(t *testing.T) {
	mem := make(pagescan.MemReader, 300)
	for i := range mem {
		mem[i] = []byte{byte(i)}
	}
	r := pagescan.Paced(mem, pagescan.NewPacer(2000))
	start := time.Now()
	var seen int
	if err := pagescan.Scan(context.Background(), r, 50, func(b uint32, p []byte) error {
		if int(b) != seen || p[0] != byte(b) {
			t.Fatalf("block %d (page %d), want %d", b, p[0], seen)
		}
		seen++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen != 300 {
		t.Fatalf("scan saw %d of 300 pages", seen)
	}
	if took := time.Since(start); took < 125*time.Millisecond {
		t.Errorf("300 pages at 2000/s took %v, less than the 125ms the budget requires", took)
	}
}

func TestPacedStopsWithContext(t *testing.T) {
	r := pagescan.Paced(make(pagescan.MemReader, 10), pagescan.NewPacer(1)) // one page a second
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.Read(ctx, 0, 5); err != nil {
		t.Fatal(err) // the first batch is not held back
	}
	_, err := r.Read(ctx, 5, 5)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second batch within the budget's wait: %v, want the context's deadline", err)
	}
}

// TestPacerSharedByTwoReaders: two relations read through one Pacer share its budget.
func TestPacerSharedByTwoReaders(t *testing.T) {
	p := pagescan.NewPacer(1000)
	a, b := pagescan.Paced(make(pagescan.MemReader, 100), p), pagescan.Paced(make(pagescan.MemReader, 100), p)
	ctx := context.Background()
	start := time.Now()
	for i := uint32(0); i < 100; i += 25 {
		if _, err := a.Read(ctx, i, 25); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Read(ctx, i, 25); err != nil {
			t.Fatal(err)
		}
	}
	// 200 pages at 1000/s: the last batch of 25 waits for the 175 before it.
	if took := time.Since(start); took < 175*time.Millisecond {
		t.Errorf("200 pages over two readers at 1000/s took %v, less than 175ms", took)
	}
}

func TestPacedWithoutBudgetIsTheReader(t *testing.T) {
	mem := make(pagescan.MemReader, 1)
	if r, ok := pagescan.Paced(mem, pagescan.NewPacer(0)).(pagescan.MemReader); !ok || len(r) != 1 {
		t.Errorf("Paced(r, NewPacer(0)) = %T, want r itself", pagescan.Paced(mem, pagescan.NewPacer(0)))
	}
}
