package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printTable prints one row per scenario (its result and the seconds each
// step took), then the one-time costs, then a closing count line.
func printTable(w io.Writer, results []result, costs []cost) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tresult\tsteps (seconds)")
	var pass, fail, skip int
	for _, r := range results {
		var steps []string
		for _, s := range r.steps {
			steps = append(steps, fmt.Sprintf("%s %.1f", s.name, s.secs))
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\n", r.id, r.name, r.status, strings.Join(steps, "; "))
		switch r.status {
		case statusPass:
			pass++
		case statusFail:
			fail++
		default:
			skip++
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, r := range results {
		if r.note != "" {
			fmt.Fprintf(w, "%s: %s\n", r.id, r.note)
		}
	}
	if len(costs) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "one-time cost\tseconds")
		for _, c := range costs {
			fmt.Fprintf(tw, "%s\t%.1f\n", c.name, c.secs)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "e2e-kubelet: %d passed, %d failed, %d skipped\n", pass, fail, skip)
}
