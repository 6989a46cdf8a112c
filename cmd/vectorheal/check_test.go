package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestCheckReportsEveryIndex runs "vectorheal check" on a real database with an HNSW and an
// IVFFlat index, in JSON and in text.
func TestCheckReportsEveryIndex(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(4))`,
		`INSERT INTO items (embedding) SELECT ARRAY[random(), random(), random(), random()]::vector FROM generate_series(1, 800)`,
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`,
		`CREATE INDEX items_ivf ON items USING ivfflat (embedding vector_ip_ops) WITH (lists = 4)`,
		`ANALYZE items`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	var out, errb bytes.Buffer
	if code := run([]string{"check", "--dsn", dsn, "--output", "json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep struct {
		PageReaderAvailable int `json:"page_reader_available"`
		Indexes             []struct {
			Indexrelname string             `json:"indexrelname"`
			IndexInfo    map[string]any     `json:"index_info"`
			Elements     map[string]float64 `json:"hnsw_elements"`
			Lists        *float64           `json:"ivfflat_lists"`
			Recall       map[string]float64 `json:"recall_ratio"`
			Live         *float64           `json:"table_live_tuples"`
			Errors       []string           `json:"errors"`
		} `json:"indexes"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.PageReaderAvailable != 1 || len(rep.Indexes) != 2 {
		t.Fatalf("page reader %d, %d indexes; want 1 and 2:\n%s", rep.PageReaderAvailable, len(rep.Indexes), out.String())
	}
	for _, ix := range rep.Indexes {
		if len(ix.Errors) > 0 || ix.Live == nil || *ix.Live != 800 {
			t.Errorf("%s: errors %v, live tuples %v", ix.Indexrelname, ix.Errors, ix.Live)
		}
		if r := ix.Recall["10"]; r <= 0 || r > 1 {
			t.Errorf("%s: recall_ratio %v", ix.Indexrelname, ix.Recall)
		}
		switch ix.Indexrelname {
		case "items_hnsw":
			if ix.Elements["live"] != 800 || ix.IndexInfo["method"] != "hnsw" {
				t.Errorf("items_hnsw: elements %v, info %v", ix.Elements, ix.IndexInfo)
			}
		case "items_ivf":
			if ix.Lists == nil || *ix.Lists != 4 {
				t.Errorf("items_ivf: lists %v", ix.Lists)
			}
		}
	}

	out.Reset()
	if code := run([]string{"check", "--dsn", dsn}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	t.Logf("text report:\n%s", out.String())
	if !strings.Contains(out.String(), "statements with distance operators: 0 calls") {
		t.Error("the probe's own statements are counted as the application's")
	}
	for _, want := range []string{"public.items_hnsw on public.items: hnsw vector_l2_ops", "hnsw_elements", "live=800", "ivfflat_list_size_cv", "recall_ratio",
		"next automatic repair: not known: check reads the database only"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCheckUnreachable exits 1 with a message naming the database.
func TestCheckUnreachable(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	dsn := "postgres://nobody@127.0.0.1:" + strconv.Itoa(port) + "/nothing?sslmode=disable&connect_timeout=2"
	code := run([]string{"check", "--dsn", dsn}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "cannot reach database 127.0.0.1:"+strconv.Itoa(port)+"/nothing") {
		t.Fatalf("exit %d, stderr %q; want 1 and a message naming the database", code, errb.String())
	}
}
