package webhook

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// insertAlerts records a batch in one statement. A row that exists already (a retry, or the
// copy from an Alertmanager HA peer) is counted again instead of inserted; xmax = 0 tells the
// rows this statement inserted from those it updated. The key is the alert's own (fingerprint,
// start, status), never the group key, whose format Alertmanager upgrades change: the same
// alert sent before and after an upgrade is one row. The receiver, group key, notification
// reason and route labels stay those of the notification that brought the alert first.
const insertAlerts = `
INSERT INTO alerts (fingerprint, status, starts_at, ends_at, alertname, labels, annotations,
                    generator_url, receiver, group_key, notification_reason, route_labels)
SELECT f, s, st, e, an, l::jsonb, a::jsonb, g, r, k, nr, rl::jsonb
  FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[],
              $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
       WITH ORDINALITY AS t(f, s, st, e, an, l, a, g, r, k, nr, rl, ord)
 ORDER BY ord
ON CONFLICT (fingerprint, starts_at, status) DO UPDATE
   SET times_received = alerts.times_received + 1,
       last_seen_at   = now(),
       ends_at        = EXCLUDED.ends_at,
       annotations    = EXCLUDED.annotations
RETURNING id, fingerprint, status, starts_at, (xmax = 0) AS inserted`

// storeError marks a failure of the state store, which the sender should retry.
type storeError struct{ err error }

func (e *storeError) Error() string { return "state store: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// hookError marks a failure of the Hook.
type hookError struct{ err error }

func (e *hookError) Error() string { return "hook: " + e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }

// recordResult counts what recording a notification did.
type recordResult struct {
	New       []Alert // recorded for the first time, with ID set
	Duplicate int     // seen before, or repeated within the notification
}

func alertKey(fp, status string, startsAt time.Time) string {
	return fp + "\x00" + status + "\x00" + strconv.FormatInt(startsAt.UnixMicro(), 10)
}

// record stores every alert of n and calls hook with the new ones, all in one transaction.
func record(ctx context.Context, pool *pgxpool.Pool, hook Hook, alerts []Alert) (recordResult, error) {
	var res recordResult
	uniq, dup := uniqueAlerts(alerts)
	res.Duplicate = dup
	tx, err := pool.Begin(ctx)
	if err != nil {
		return res, &storeError{err}
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// The 200 promises the alerts are on disk: a server running with synchronous_commit off
	// would acknowledge a commit it can still lose, so this transaction asks for the flush.
	// Stronger settings (remote_write, remote_apply) are left as they are.
	if _, err := tx.Exec(ctx, `SELECT set_config('synchronous_commit', 'on', true)
		WHERE current_setting('synchronous_commit') = 'off'`); err != nil {
		return res, &storeError{err}
	}
	newAlerts, dup, err := insertNew(ctx, tx, uniq)
	if err != nil {
		return res, &storeError{err}
	}
	res.New, res.Duplicate = newAlerts, res.Duplicate+dup
	if hook != nil && len(res.New) > 0 {
		if err := hook(ctx, tx, res.New); err != nil {
			return res, &hookError{err}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return res, &storeError{err}
	}
	return res, nil
}

// uniqueAlerts returns alerts without repeats, sorted, and how many repeats it left out.
// PostgreSQL keeps microseconds; two alerts that differ below that are one row, and one
// INSERT may not touch a row twice, so the batch is made unique first. It is also sorted, so
// that concurrent notifications with overlapping alerts lock rows in the same order and never
// deadlock.
func uniqueAlerts(alerts []Alert) ([]Alert, int) {
	uniq := make([]Alert, 0, len(alerts))
	seen := make(map[string]bool, len(alerts))
	dup := 0
	for _, a := range alerts {
		a.StartsAt = a.StartsAt.Truncate(time.Microsecond)
		if !a.EndsAt.IsZero() {
			a.EndsAt = a.EndsAt.Truncate(time.Microsecond)
		}
		k := alertKey(a.Fingerprint, a.Status, a.StartsAt)
		if seen[k] {
			dup++
			continue
		}
		seen[k] = true
		uniq = append(uniq, a)
	}
	sort.Slice(uniq, func(i, j int) bool {
		a, b := uniq[i], uniq[j]
		if a.Fingerprint != b.Fingerprint {
			return a.Fingerprint < b.Fingerprint
		}
		if !a.StartsAt.Equal(b.StartsAt) {
			return a.StartsAt.Before(b.StartsAt)
		}
		return a.Status < b.Status
	})
	return uniq, dup
}

// insertNew inserts the alerts of uniq (unique, sorted) in tx and returns those that were not
// recorded before, with their IDs, and how many were.
func insertNew(ctx context.Context, tx pgx.Tx, uniq []Alert) (newAlerts []Alert, dup int, err error) {
	rows, err := tx.Query(ctx, insertAlerts, columns(uniq)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	byKey := make(map[string]int, len(uniq))
	for i, a := range uniq {
		byKey[alertKey(a.Fingerprint, a.Status, a.StartsAt)] = i
	}
	for rows.Next() {
		var (
			id          int64
			fp, status  string
			startsAt    time.Time
			wasInserted bool
		)
		if err := rows.Scan(&id, &fp, &status, &startsAt, &wasInserted); err != nil {
			return nil, 0, err
		}
		if !wasInserted {
			dup++
			continue
		}
		i, ok := byKey[alertKey(fp, status, startsAt)]
		if !ok {
			return nil, 0, fmt.Errorf("inserted row %d matches no alert of the notification", id)
		}
		a := uniq[i]
		a.ID = id
		newAlerts = append(newAlerts, a)
	}
	return newAlerts, dup, rows.Err()
}

// columns turns alerts into the arrays insertAlerts unnests.
func columns(alerts []Alert) []any {
	n := len(alerts)
	var (
		fps, statuses, names, labels, annots = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		urls, receivers, groupKeys           = make([]string, n), make([]string, n), make([]string, n)
		reasons, routes                      = make([]string, n), make([]string, n)
		starts                               = make([]time.Time, n)
		ends                                 = make([]pgtype.Timestamptz, n)
	)
	var buf []byte
	for i, a := range alerts {
		buf = appendJSONObject(buf[:0], a.RouteLabels)
		routes[i] = string(buf)
		reasons[i] = a.NotificationReason
		buf = appendJSONObject(buf[:0], a.Labels)
		labels[i] = string(buf)
		buf = appendJSONObject(buf[:0], a.Annotations)
		annots[i] = string(buf)
		fps[i], statuses[i], names[i] = a.Fingerprint, a.Status, a.Labels["alertname"]
		urls[i], receivers[i], groupKeys[i] = a.GeneratorURL, a.Receiver, a.GroupKey
		starts[i] = a.StartsAt
		ends[i] = pgtype.Timestamptz{Time: a.EndsAt, Valid: !a.EndsAt.IsZero()}
	}
	return []any{fps, statuses, starts, ends, names, labels, annots, urls, receivers, groupKeys, reasons, routes}
}

// appendJSONObject writes m as a JSON object. It replaces encoding/json, whose sorting of keys
// by reflection was the largest cost of intake; jsonb does not keep key order anyway. Strings
// are valid UTF-8 here (the decoder replaced invalid bytes), so only quotes, backslashes and
// control characters need escaping.
func appendJSONObject(b []byte, m map[string]string) []byte {
	b = append(b, '{')
	first := true
	for k, v := range m {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v)
	}
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
