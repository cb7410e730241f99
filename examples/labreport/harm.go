//go:build linux

package main

import (
	"bytes"
	"fmt"
	"time"

	"github.com/flapguard/flapguard/internal/labrun"
)

// noWorseSlack: flapguard's worst latency may exceed plain's by this much
// and still count as no worse (the bound).
const noWorseSlack = 100 * time.Millisecond

// tradeoffs explains, per scenario, why flapguard may fail more requests
// or be slower than plain there. A row that is worse and has no entry here
// is a bug, and the report says so.
var tradeoffs = map[string]string{
	"S3":         "A 3s blackhole during steady traffic: flapguard finds the path dead (a fresh connection fails) and severs, so requests caught by the fault fail when the sever happens instead of at their deadline; plain's fail at the deadline. With a 2s deadline and a 3s outage both lose the requests in flight; any extra failures are requests that plain would have finished once the path came back before their deadline.",
	"S4":         "An RST storm: both sides lose what is in flight. flapguard's liveness check at borrow can add a reconnect to a request right after the storm.",
	"S5":         "A server restart: every session ends, and both sides lose what is in flight; a difference of one or two is which requests happened to be in flight at that moment. On PostgreSQL flapguard also does not trust pgx's \"safe to retry\" after a statement was sent (pgx v5.12 duplicates writes otherwise: TestSafeToRetryAfterSend), so a statement cut by the restart is reported as outcome unknown where plain retries it on a new connection.",
	"H3":         "The feed said the pool's only tunnel went down: flapguard obeys (sever and gate), plain knows nothing of the feed. Storm control bounds it to one sever per ResetCooldown.",
	"H4":         "Both DOWN events (the future-dated one and the later current one) are obeyed with a sever, although the path worked; the supervisor then finds the path working and reopens within milliseconds.",
	"H5":         "The storm's first DOWN is obeyed with a sever, and when the storm is over the requests still in flight since one of its DOWNs are cut: requests that plain's pool sometimes carries through a 300ms blackhole by retransmission fail instead. When every worker was in flight at the storm's last DOWN (usual in this scenario: the storm's rhythm aligns them), flapguard's first success after back comes ResetCooldown (1s) and a connect after the storm's last event; when one was not, it waits at the held gate and succeeds about 0.1s after back. Plain's when its requests stuck on dead flows reach their deadline, which can be sooner or later (0.8-1.9s across runs).",
	"S8-notify":  "The DOWN is obeyed at once: requests in flight are cut now and new ones wait at the gate, failing at their own deadline if the outage outlasts it; plain's requests hang on the dead flows until their deadline, so plain attempts fewer requests during the same outage. Neither side fails a request after UP.",
	"S8-syslog":  "As S8-notify: the DOWN (a YAMAHA RTX line over syslog) is obeyed at once; during the outage flapguard fails each request promptly where plain's hang until their deadline, so it attempts (and fails) more of them. Neither side fails a request after UP.",
	"S8-webhook": "As S8-notify, through the webhook.",
	"S9-1%":      s9Chance,
	"S9-3%":      s9Chance,
}

// s9Chance: on a lossy path with no fault the two sides meet independent
// loss draws (internal/labrun/wan_test.go, checkLossy).
const s9Chance = "No fault: the two sides meet independent packet losses. A request fails, or is the slowest, only after several losses in a row, and that falls to either side by chance: across runs CI saw plain fail one request and flapguard none, and another run the reverse. What flapguard adds (a liveness ping after 1s idle, replacing pgx's own, and the prober's ping of the coldest idle conn, which counts as the next borrow's check) is the same number of round trips as plain pgx."

// harmMatrix renders one row per scenario run: plain and flapguard side by
// side, and whether flapguard was no worse (failures ≤ plain's, worst
// latency ≤ plain's + 100ms), with the reason under every row where not.
func harmMatrix(rs []*labrun.Result) string {
	var b bytes.Buffer
	b.WriteString("## Harm matrix: never worse than plain\n\n")
	fmt.Fprintf(&b, "Every scenario below, one row each: requests that failed and the worst latency on each side. *no worse*: flapguard failed no more requests than plain and its worst latency was at most plain's + %v. Where it is not, the reason is written under the table.\n\n", noWorseSlack)
	b.WriteString("| scenario | server | path | plain failed | flapguard failed | plain worst | flapguard worst | no worse |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---|\n")
	var notes []string
	seen := map[string]bool{}
	for _, r := range rs {
		if len(r.Sides) != 2 {
			continue
		}
		pl, fg := r.Side("plain"), r.Side("flapguard")
		ok := fg.Failed <= pl.Failed && fg.MaxLatency <= pl.MaxLatency+noWorseSlack
		verdict := "yes"
		if !ok {
			verdict = "**no**"
			why, known := tradeoffs[r.Scenario]
			if !known {
				why = "no trade-off is written down for this scenario: a bug to investigate."
			}
			key := r.Scenario + r.Server + r.Path
			if !seen[key] {
				seen[key] = true
				notes = append(notes, fmt.Sprintf("- **%s %s%s**: %s", r.Scenario, r.Server, pathNote(r), why))
			}
		}
		path := "LAN"
		if r.Path != "" {
			path = "WAN " + r.Path
		}
		fmt.Fprintf(&b, "| %s %s | %s | %s | %d | %d | %s | %s | %s |\n", r.Scenario, r.Title, r.Server, path, pl.Failed, fg.Failed,
			fmtMS(pl.MaxLatency), fmtMS(fg.MaxLatency), verdict)
	}
	b.WriteString("\n")
	if len(notes) > 0 {
		b.WriteString("Where flapguard is worse, and why:\n\n")
		for _, n := range notes {
			b.WriteString(n + "\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func pathNote(r *labrun.Result) string {
	if r.Path == "" {
		return ""
	}
	return " (WAN)"
}

func fmtMS(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}
