package strategy_test

import (
	"fmt"

	"github.com/vectorheal/vectorheal/remediation/strategy"
)

func ExampleDefault() {
	reg, err := strategy.Default(strategy.Options{})
	if err != nil {
		panic(err)
	}
	for _, name := range reg.Names() {
		fmt.Println(name)
	}
	_, err = reg.Bind("tune_search", strategy.Params{"scope": "role"})
	fmt.Println(err)
	// Output:
	// analyze
	// hnsw_rebuild
	// ivfflat_retrain
	// reclaim
	// reindex
	// sql
	// tune_search
	// vacuum
	// parameter "role": required when scope is role
}
