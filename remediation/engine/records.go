package engine

import "github.com/vectorheal/vectorheal/remediation/record"

// The records the engine keeps, by the names it uses for them; their shape is package
// record's, which the API and the CLI read without depending on the engine.
type (
	Repair         = record.Repair
	Plan           = record.Plan
	PlanStep       = record.PlanStep
	Window         = record.Window
	Step           = record.Step
	Filter         = record.Filter
	TriggerRequest = record.TriggerRequest
	Circuit        = record.Circuit
	FutileMark     = record.FutileMark
	Status         = record.Status
	Issue          = record.Issue
	IssueRepair    = record.IssueRepair
	Hold           = record.Hold
	BudgetState    = record.BudgetState
	IndexBudget    = record.IndexBudget
)

// Errors the API turns into status codes (record.ErrNotFound and the others).
var (
	ErrNotFound = record.ErrNotFound
	ErrConflict = record.ErrConflict
	ErrInvalid  = record.ErrInvalid
)
