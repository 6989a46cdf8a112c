package exporter

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/config"
)

// customResult is the latest result of a user SQL metric on one target.
type customResult struct {
	samples []customSample
}

type customSample struct {
	labels []string // values of the metric's label columns, in order
	value  float64
}

// runCustom runs the metric's SQL read-only within its timeout and reads one sample per row.
func runCustom(ctx context.Context, pool *pgxpool.Pool, m config.CustomMetric) (*customResult, error) {
	res := &customResult{}
	err := readOnly(ctx, pool, m.Timeout, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, m.SQL)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols := map[string]int{}
		var names []string
		for i, fd := range rows.FieldDescriptions() {
			cols[fd.Name] = i
			names = append(names, fd.Name)
		}
		vi, ok := cols[m.ValueColumn]
		if !ok {
			return fmt.Errorf("value column %q is not in the result (columns: %s)", m.ValueColumn, strings.Join(names, ", "))
		}
		li := make([]int, len(m.LabelColumns))
		for i, l := range m.LabelColumns {
			if li[i], ok = cols[l]; !ok {
				return fmt.Errorf("label column %q is not in the result (columns: %s)", l, strings.Join(names, ", "))
			}
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return err
			}
			v, err := toFloat(vals[vi])
			if err != nil {
				return fmt.Errorf("value column %q: %w", m.ValueColumn, err)
			}
			s := customSample{value: v, labels: make([]string, len(li))}
			for i, c := range li {
				if vals[c] != nil {
					s.labels[i] = fmt.Sprint(vals[c])
				}
			}
			res.samples = append(res.samples, s)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("custom metric %s: %w", m.Name, err)
	}
	return res, nil
}

// toFloat converts a numeric SQL value to float64.
func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case nil:
		return 0, fmt.Errorf("is NULL")
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case int16:
		return float64(x), nil
	case int8:
		return float64(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case pgtype.Numeric:
		f, err := x.Float64Value()
		if err != nil || !f.Valid {
			return 0, fmt.Errorf("numeric %v is not a finite number", x)
		}
		return f.Float64, nil
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		return f, nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", x)
		}
		return f, nil
	}
	return 0, fmt.Errorf("type %T is not numeric", v)
}
