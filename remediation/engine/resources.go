package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// freeSpaceTimeout bounds the Prometheus query asked before a build.
const freeSpaceTimeout = 15 * time.Second

// resources turns a target's configured build guards into what the strategies ask: the free
// space (a budget, or a Prometheus query asked right before each build) and the cap of
// parallel build workers. Nothing configured gives nil: the strategies then say the space is
// not checked and leave the server's worker setting.
func resources(target string, b config.Builds, client *http.Client) *strategy.Resources {
	if !b.HasFreeSpace() && b.MaxParallelWorkers == nil {
		return nil
	}
	r := &strategy.Resources{MaxParallelWorkers: -1}
	if b.MaxParallelWorkers != nil {
		r.MaxParallelWorkers = *b.MaxParallelWorkers
	}
	switch {
	case b.FreeSpaceBytes > 0:
		free := strategy.FreeSpace{Bytes: b.FreeSpaceBytes, Reserve: b.ReserveBytes,
			Source: fmt.Sprintf("budget builds.free_space_bytes of target %q", target)}
		r.FreeSpace = func(context.Context) (*strategy.FreeSpace, error) { return &free, nil }
	case b.FreeSpaceQuery != "":
		r.FreeSpace = func(ctx context.Context) (*strategy.FreeSpace, error) {
			n, err := queryFreeSpace(ctx, client, b.PrometheusURL, b.FreeSpaceQuery)
			if err != nil {
				return nil, err
			}
			return &strategy.FreeSpace{Bytes: n, Reserve: b.ReserveBytes,
				Source: fmt.Sprintf("Prometheus query builds.free_space_query %s of target %q", b.FreeSpaceQuery, target)}, nil
		}
	}
	return r
}

// queryFreeSpace asks Prometheus's instant query API for query and returns its one value in
// bytes. Anything but exactly one finite, non-negative sample is an error: the guard must not
// pick one volume of several, nor read "no data" as "no space" or as "enough".
func queryFreeSpace(ctx context.Context, client *http.Client, base, query string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, freeSpaceTimeout)
	defer cancel()
	u := strings.TrimRight(base, "/") + "/api/v1/query?" + url.Values{"query": {query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("free space query %s: %w", query, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("free space query %s: %w", query, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("free space query %s: read answer: %w", query, err)
	}
	var ans struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return 0, fmt.Errorf("free space query %s: Prometheus answered %s: %w", query, resp.Status, err)
	}
	if ans.Status != "success" {
		return 0, fmt.Errorf("free space query %s: Prometheus answered %s: %s", query, resp.Status, ans.Error)
	}
	var value []any
	switch ans.Data.ResultType {
	case "scalar":
		if err := json.Unmarshal(ans.Data.Result, &value); err != nil {
			return 0, fmt.Errorf("free space query %s: %w", query, err)
		}
	case "vector":
		var samples []struct {
			Value []any `json:"value"`
		}
		if err := json.Unmarshal(ans.Data.Result, &samples); err != nil {
			return 0, fmt.Errorf("free space query %s: %w", query, err)
		}
		if len(samples) != 1 {
			return 0, fmt.Errorf("free space query %s: %d series, want exactly one (the volume of the target's indexes)", query, len(samples))
		}
		value = samples[0].Value
	default:
		return 0, fmt.Errorf("free space query %s: result type %q, want a vector of one series", query, ans.Data.ResultType)
	}
	if len(value) != 2 {
		return 0, fmt.Errorf("free space query %s: malformed sample %v", query, value)
	}
	s, _ := value[1].(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f < 0 || f > 1<<62 {
		return 0, fmt.Errorf("free space query %s: value %q is not a number of bytes", query, s)
	}
	return int64(f), nil
}

// indexHistory reads the steps earlier repairs of one index recorded, for the strategies'
// cost estimates.
type indexHistory struct {
	repairs               repairStore
	target, schema, index string
}

// Steps implements strategy.History.
func (h indexHistory) Steps(ctx context.Context, strat string, limit int) ([]strategy.PastStep, error) {
	return h.repairs.pastSteps(ctx, strat, h.target, h.schema, h.index, limit)
}
