package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// fmtDur prints a latency compactly: 1ms, 12ms, 2.0s.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d == 0:
		return "0s"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// tableRows are the final table's rows: a label and one cell per run.
// The rows from "succeeded" to "failed: hung" add up to "requests".
func tableRows(runs []summary, hasUp bool, deadline time.Duration) [][]string {
	na := func(v string) string {
		if !hasUp {
			return "-"
		}
		return v
	}
	rows := [][]string{{""}}
	for _, s := range runs {
		rows[0] = append(rows[0], s.Name)
	}
	add := func(label string, cell func(summary) string) {
		row := []string{label}
		for _, s := range runs {
			row = append(row, cell(s))
		}
		rows = append(rows, row)
	}
	add("requests", func(s summary) string { return fmt.Sprint(s.Requests) })
	add("  succeeded", func(s summary) string { return fmt.Sprint(s.OK) })
	add("  failed: returned an error", func(s summary) string { return fmt.Sprint(s.Failed) })
	add("  failed: hung (no answer after "+fmtDur(hangThreshold(deadline))+")", func(s summary) string {
		if s.Abandoned > 0 {
			return fmt.Sprintf("%d (%d never returned)", s.Hung, s.Abandoned)
		}
		return fmt.Sprint(s.Hung)
	})
	add("failed, of those started after UP", func(s summary) string { return na(fmt.Sprint(s.FailedAfterUp)) })
	add("slowest request", func(s summary) string { return fmtDur(s.Worst) })
	add("back after UP, for good", func(s summary) string {
		if s.Back < 0 {
			return na("never")
		}
		return na(fmtDur(s.Back))
	})
	return rows
}

// writeTable prints rows with the first column left-aligned and the rest
// right-aligned.
func writeTable(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("   " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
