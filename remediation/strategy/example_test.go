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
	tune, _ := reg.Get("tune_search")
	fmt.Println(tune.CheckParams(strategy.Params{"scope": "role"}))
	// Output:
	// analyze
	// ivfflat_retrain
	// reindex
	// sql
	// tune_search
	// vacuum
	// parameter "role": required when scope is role
}
