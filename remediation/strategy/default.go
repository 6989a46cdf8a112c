package strategy

import "time"

// Options tune the strategies Default builds.
type Options struct {
	// ProgressInterval is how often the progress of a long statement (index build, vacuum) is
	// sampled and logged. Default 10s.
	ProgressInterval time.Duration
	// OnProgress, when set, receives every progress sample, e.g. to publish a gauge.
	OnProgress func(Progress)
	// CleanupTimeout bounds the clean-up after a failed or timed-out rebuild (dropping the
	// INVALID leftover), which runs after the step's own context has ended. Default 10m.
	CleanupTimeout time.Duration
}

func (o Options) progressInterval() time.Duration {
	if o.ProgressInterval > 0 {
		return o.ProgressInterval
	}
	return 10 * time.Second
}

func (o Options) cleanupTimeout() time.Duration {
	if o.CleanupTimeout > 0 {
		return o.CleanupTimeout
	}
	return 10 * time.Minute
}

// Default returns a registry holding every strategy vectorheal ships: reindex, vacuum,
// ivfflat_retrain, tune_search, analyze, sql, hnsw_rebuild and reclaim.
func Default(opts Options) (*Registry, error) {
	// One line per strategy: its file holds everything else (spec, typed parameters, work).
	return NewRegistry(
		Define[ReindexConfig](&Reindex{opts: opts}),
		Define[VacuumConfig](&Vacuum{opts: opts}),
		Define[RetrainConfig](&Retrain{opts: opts}),
		Define[TuneConfig](&TuneSearch{opts: opts}),
		Define[AnalyzeConfig](&Analyze{opts: opts}),
		Define[SQLConfig](&SQL{opts: opts}),
		Define[HNSWRebuildConfig](&HNSWRebuild{opts: opts}),
		Define[ReclaimConfig](&Reclaim{opts: opts}),
	)
}
