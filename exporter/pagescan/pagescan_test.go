package pagescan_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

type bundle struct {
	ctx  context.Context
	pool *pgxpool.Pool
	dsn  string
	oid  uint32 // of index items_v_idx
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b := &bundle{ctx: ctx, pool: pool, dsn: dsn}
	for _, s := range []string{
		`CREATE TABLE items (id int PRIMARY KEY, v vector(4))`,
		`INSERT INTO items SELECT i, ARRAY[random(), random(), random(), random()]::vector FROM generate_series(1, 3000) AS i`,
		`CREATE INDEX items_v_idx ON items USING hnsw (v vector_l2_ops)`,
	} {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := pool.QueryRow(ctx, `SELECT 'items_v_idx'::regclass::oid`).Scan(&b.oid); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSQLReaderMatchesServer(t *testing.T) {
	b := setup(t)
	r := pagescan.NewSQLReader(b.pool, b.oid, 3, pagescan.RawPageFunc)
	n, err := r.Blocks(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	if err := b.pool.QueryRow(b.ctx, `SELECT pg_relation_size('items_v_idx') / 8192`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if int64(n) != want || n < 8 {
		t.Fatalf("blocks %d, server %d", n, want)
	}
	// Seven pages from block 2 in batches of 3: three round trips, the last one short.
	pages, err := r.Read(b.ctx, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 7 {
		t.Fatalf("%d pages", len(pages))
	}
	for i, p := range pages {
		var raw []byte
		if err := b.pool.QueryRow(b.ctx, `SELECT get_raw_page('items_v_idx', $1::int)`, 2+i).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p, raw) {
			t.Fatalf("block %d differs from get_raw_page", 2+i)
		}
		checkAgainstPageinspect(t, b, 2+i, p)
	}
	if _, err := r.Read(b.ctx, n-1, 2); err == nil || !strings.Contains(err.Error(), "block") {
		t.Errorf("reading past the end: %v", err)
	}
	var seen uint32
	if err := pagescan.Scan(b.ctx, r, 4, func(blk uint32, p []byte) error {
		if blk != seen || len(p) != pagescan.PageSize {
			t.Fatalf("scan gave block %d (%d bytes), want %d", blk, len(p), seen)
		}
		seen++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen != n {
		t.Errorf("scan saw %d of %d blocks", seen, n)
	}
}

// checkAgainstPageinspect compares the header, special area and line pointers with
// pageinspect's decoding of the same page.
func checkAgainstPageinspect(t *testing.T, b *bundle, blk int, p []byte) {
	t.Helper()
	h, err := pagescan.ParseHeader(p)
	if err != nil {
		t.Fatal(err)
	}
	var lower, upper, special int
	if err := b.pool.QueryRow(b.ctx, `SELECT lower, upper, special FROM page_header(get_raw_page('items_v_idx', $1::int))`, blk).
		Scan(&lower, &upper, &special); err != nil {
		t.Fatal(err)
	}
	if int(h.Lower) != lower || int(h.Upper) != upper || int(h.Special) != special {
		t.Errorf("block %d header %d/%d/%d, pageinspect %d/%d/%d", blk, h.Lower, h.Upper, h.Special, lower, upper, special)
	}
	sp, err := pagescan.ParseSpecial(p, h)
	if err != nil || sp.PageID != 0xFF90 {
		t.Errorf("block %d special %+v, %v", blk, sp, err)
	}
	rows, err := b.pool.Query(b.ctx, `SELECT lp, lp_off, lp_flags, lp_len FROM heap_page_items(get_raw_page('items_v_idx', $1::int))`, blk)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	count := 0
	for rows.Next() {
		var lp, off, flags, ln int
		if err := rows.Scan(&lp, &off, &flags, &ln); err != nil {
			t.Fatal(err)
		}
		count++
		got, err := pagescan.LinePointer(p, h, lp)
		if err != nil || int(got.Off) != off || int(got.Flags) != flags || int(got.Len) != ln {
			t.Errorf("block %d item %d: %+v (%v), pageinspect off %d flags %d len %d", blk, lp, got, err, off, flags, ln)
		}
		if item, err := pagescan.Item(p, h, lp); err != nil || len(item) != ln {
			t.Errorf("block %d item %d: %d bytes, %v", blk, lp, len(item), err)
		}
	}
	if count != pagescan.ItemCount(h) {
		t.Errorf("block %d: %d items, pageinspect %d", blk, pagescan.ItemCount(h), count)
	}
}

// TestSQLReaderWrapper reads through a SECURITY DEFINER wrapper with a name that needs
// quoting, as a role that may not call get_raw_page itself.
func TestSQLReaderWrapper(t *testing.T) {
	b := setup(t)
	for _, s := range []string{
		`CREATE SCHEMA "page reader"`,
		`CREATE FUNCTION "page reader"."Raw Page"(rel regclass, blk integer) RETURNS bytea
		 LANGUAGE sql STRICT SECURITY DEFINER SET search_path = pg_catalog AS $$ SELECT public.get_raw_page(rel::text, blk) $$`,
		`DROP ROLE IF EXISTS pagescan_reader`,
		`CREATE ROLE pagescan_reader LOGIN`,
		`GRANT USAGE ON SCHEMA "page reader" TO pagescan_reader`,
	} {
		if _, err := b.pool.Exec(b.ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() {
		_, _ = b.pool.Exec(context.Background(), `DROP OWNED BY pagescan_reader; DROP ROLE pagescan_reader`)
	})
	cfg, err := pgx.ParseConfig(b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = "pagescan_reader"
	conn, err := pgx.ConnectConfig(b.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(b.ctx)
	if _, err := pagescan.NewSQLReader(conn, b.oid, 2, pagescan.RawPageFunc).Read(b.ctx, 0, 1); err == nil {
		t.Fatal("an unprivileged role read a page with get_raw_page")
	}
	pages, err := pagescan.NewSQLReader(conn, b.oid, 2, `page reader.Raw Page`).Read(b.ctx, 1, 3)
	if err != nil {
		t.Fatalf("read through the wrapper: %v", err)
	}
	var raw []byte
	if err := b.pool.QueryRow(b.ctx, `SELECT get_raw_page('items_v_idx', 3)`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if len(pages) != 3 || !bytes.Equal(pages[2], raw) {
		t.Errorf("wrapper pages differ from get_raw_page")
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := pagescan.ParseHeader(make([]byte, 100)); !errors.Is(err, pagescan.ErrBadPage) {
		t.Errorf("short page: %v", err)
	}
	p := make([]byte, pagescan.PageSize)
	if !pagescan.IsNew(p) {
		t.Error("zero page is not new")
	}
	binary.LittleEndian.PutUint16(p[12:], 40)   // lower
	binary.LittleEndian.PutUint16(p[14:], 8000) // upper
	binary.LittleEndian.PutUint16(p[16:], 8184) // special
	binary.LittleEndian.PutUint16(p[18:], 8192|4)
	h, err := pagescan.ParseHeader(p)
	if err != nil {
		t.Fatal(err)
	}
	if pagescan.ItemCount(h) != 4 {
		t.Errorf("items %d", pagescan.ItemCount(h))
	}
	// Item 1 points before upper; item 5 does not exist.
	binary.LittleEndian.PutUint32(p[24:], 100|1<<15|50<<17)
	if _, err := pagescan.Item(p, h, 1); !errors.Is(err, pagescan.ErrBadPage) {
		t.Errorf("item outside tuple space: %v", err)
	}
	if _, err := pagescan.LinePointer(p, h, 5); !errors.Is(err, pagescan.ErrBadPage) {
		t.Errorf("line pointer past the end: %v", err)
	}
	binary.LittleEndian.PutUint16(p[14:], 9000)
	if _, err := pagescan.ParseHeader(p); !errors.Is(err, pagescan.ErrBadPage) {
		t.Errorf("upper past special: %v", err)
	}
	var b [6]byte
	for _, tid := range []pagescan.TID{{Block: 0x12345678, Offset: 9}, pagescan.InvalidTID} {
		pagescan.EncodeTID(b[:], tid)
		if got := pagescan.DecodeTID(b[:]); got != tid {
			t.Errorf("round trip %v -> %v", tid, got)
		}
	}
	if pagescan.InvalidTID.Valid() || !(pagescan.TID{Block: 0, Offset: 1}).Valid() {
		t.Error("validity of TIDs")
	}
}
