package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vectorheal/vectorheal/remediation/record"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// severityOf is an alert's severity as the rules give it: vectorheal_severity (low, medium,
// high, critical: the seed's tiers) where set, else the routing label severity.
func severityOf(labels map[string]string) string {
	if s := labels["vectorheal_severity"]; s != "" {
		return s
	}
	if s := labels["severity"]; s != "" {
		return s
	}
	return "-"
}

// printIssues writes the alerts received as a table, newest first as the API lists them; next
// says when the next automatic repair of an index may run.
func printIssues(w io.Writer, is []record.Issue, next func(target, schema, index string) string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALERT\tSEVERITY\tSTATUS\tTARGET\tINDEX\tSINCE\tSEEN\tREASON\tREPAIRS\tNEXT REPAIR")
	for _, i := range is {
		var rs []string
		for _, r := range i.Repairs {
			rs = append(rs, fmt.Sprintf("#%d %s", r.ID, r.State))
		}
		reason := i.NotificationReason
		if reason == "" {
			reason = "-" // Alertmanager before 0.32 does not say
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s.%s\t%s\t%d\t%s\t%s\t%s\n", i.Alertname, severityOf(i.Labels), i.Status, i.Labels["target"],
			i.Labels["schemaname"], i.Labels["indexrelname"], i.StartsAt.Format(time.RFC3339), i.TimesReceived, reason,
			strings.Join(rs, ", "), next(i.Labels["target"], i.Labels["schemaname"], i.Labels["indexrelname"]))
	}
	return tw.Flush()
}

// plannedSQL writes the SQL a step will run when it has run none yet: a dry run's plan, or a
// step still waiting (for approval, for its turn). A step that ran shows what it ran instead.
func plannedSQL(w io.Writer, ran []string, impact *strategy.Impact) {
	if len(ran) > 0 || impact == nil {
		return
	}
	for _, q := range impact.Statements {
		fmt.Fprintf(w, "  sql (planned): %s\n", q)
	}
}
