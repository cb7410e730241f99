package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// statusLine is one run's live line, e.g.
// "plain      t=07s ok=123 fail=4 hung=8 p99=2.0s".
func statusLine(name string, now time.Duration, reqs []request, openStarts []time.Duration, deadline time.Duration) string {
	ok, fail := 0, 0
	for _, r := range reqs {
		if r.failed() {
			fail++
		} else {
			ok++
		}
	}
	hung := 0
	for _, s := range openStarts {
		if now-s > hangThreshold(deadline) {
			hung++
		}
	}
	p := "-"
	if w := window(reqs, now-time.Second, now); len(w) > 0 {
		p = fmtDur(p99(w))
	}
	return fmt.Sprintf("%-10s t=%02ds ok=%d fail=%d hung=%d p99=%s", name, int(now.Seconds()), ok, fail, hung, p)
}

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

// fmtRecover prints "first ok → steady" after UP.
func fmtRecover(s summary) string {
	if s.FirstOKAfter < 0 {
		return "never"
	}
	steady := "never"
	if s.SteadyAfter >= 0 {
		steady = fmtDur(s.SteadyAfter)
	}
	return fmtDur(s.FirstOKAfter) + " → " + steady
}

// tableRows are the final table's rows: a label and one cell per run.
func tableRows(runs []summary, hasUp bool) [][]string {
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
	add("failed", func(s summary) string { return fmt.Sprint(s.Failed) })
	add("failed after UP", func(s summary) string { return na(fmt.Sprint(s.FailedAfterUp)) })
	add("hung past deadline", func(s summary) string {
		if s.Abandoned > 0 {
			return fmt.Sprintf("%d (%d abandoned)", s.Hung, s.Abandoned)
		}
		return fmt.Sprint(s.Hung)
	})
	add("worst latency", func(s summary) string { return fmtDur(s.Worst) })
	add("recovery: first ok → steady", func(s summary) string { return na(fmtRecover(s)) })
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
