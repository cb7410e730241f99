//go:build linux

package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/internal/lab"
	"github.com/flapguard/flapguard/internal/tdsserver"
	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mssqladapter"
)

var tdsDialect = dialect{
	name:     "tds",
	driver:   "sqlserver",
	ph:       func(i int) string { return fmt.Sprintf("@p%d", i) },
	sumQuery: "select 1",
	sleep: func(d time.Duration) string {
		ms := d.Milliseconds()
		return fmt.Sprintf("waitfor delay '00:00:%02d.%03d'", ms/1000, ms%1000)
	},
	insert: func(id int64, _ int) (string, []any) {
		return "insert into soak_inserts (id) values (@p1)", []any{id}
	},
}

// tdsSettleTimeout is longer than settleTimeout: nothing reaps SQL Server
// orphans by default (KILL needs ALTER ANY CONNECTION, so OrphansAuto
// leaves it off, and the double cannot answer the session query anyway).
// A session whose flow a rekey killed lingers until the double's socket
// learns that the client is gone, once ReviveFlows lets packets through:
// from the app side's FIN, retransmitted with exponential backoff, or from
// the RST that answers the double's keepalive (Go's listener default: 15s
// idle, net/dial.go:20). Measured: 5-13s after the workers stopped.
const tdsSettleTimeout = 30 * time.Second

// TestSoakTDS runs go-mssqldb through a flapguard pool against the TDS
// double in the lab, under the same kinds of faults (a server "restart" is
// the double closing every session with RST), and checks the
// connection-level invariants: every acknowledged insert stored exactly
// once (the double's table store), none of the provably unsent ones,
// unknown ones at most once; after settling at most MaxOpenConns+1 server
// sessions, none orphaned; no goroutine or fd left after Close.
func TestSoakTDS(t *testing.T) {
	lab.Require(t)
	prm := flags(t, *flagTDSDuration, *flagTDSWorkers)
	t.Logf("soak tds: seed %d (replay with -soak.seed %d), %d workers, %v of faults", prm.seed, prm.seed, prm.workers, prm.duration)
	l := lab.New(t)
	base, err := takeBaseline(0)
	if err != nil {
		t.Fatal(err)
	}
	srv := tdsserver.New(tdsserver.Config{})
	ln, err := l.ListenDB("tcp", net.JoinHostPort(l.DBAddr().String(), "1433"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { srv.Serve(ln); close(served) }()
	t.Cleanup(func() { srv.Close() })

	tg := &target{d: tdsDialect, dsn: "sqlserver://soak:pw@" + ln.Addr().String() + "?database=test&encrypt=disable"}
	app := l.AppAddr()
	tg.sessions = func(context.Context) ([]serverSession, error) {
		var out []serverSession
		for _, s := range srv.Sessions() {
			a, ok := s.RemoteAddr.(*net.TCPAddr)
			if s.User != "soak" || !ok || !a.IP.Equal(app.AsSlice()) {
				continue
			}
			st := "idle"
			if s.Busy {
				st = "busy"
			}
			out = append(out, serverSession{id: int64(s.SPID), port: a.Port, state: st})
		}
		return out, nil
	}
	sched := &scheduler{l: l, killed: make(map[int]time.Time), rng: rand.New(rand.NewPCG(prm.seed, 0)), gapLo: time.Second, gapHi: 4 * time.Second, overlap: 250,
		servers: []restartable{{"tds (every session closed with RST)", func() error { srv.CloseSessions(true); return nil }}},
		logf:    t.Logf, start: time.Now()}
	tg.open(t, l, sched.start)
	sched.pools = []*pool.Pool{tg.p}

	w := workload{workers: prm.workers, broken: prm.broken, mix: [3]int{400, 970, 970}, noDeadline: 80,
		thinkLo: 10 * time.Millisecond, thinkHi: 40 * time.Millisecond,
		longLo: 500 * time.Millisecond, longHi: 2 * time.Second}
	logs := soak(t, sched, []*target{tg}, w, prm)
	defer healOnFailure(t, sched)
	end := time.Now()
	ws := sched.allWindows()
	t.Log(windowList(ws, sched.start))

	var v violations
	probs, took := settle(tdsSettleTimeout, func(ctx context.Context) ([]string, error) {
		return sessionProblems(ctx, tg.sessions, tg.socks, tg.p.DB().Stats().OpenConnections, maxOpenConns,
			func(port int) string { return sched.explainPort(tg, port) })
	}, func(probs []string) {
		t.Logf("%s: settling: at first %s", tg.d.name, strings.Join(probs, "; "))
	})
	for _, p := range probs {
		v.add("5 sessions after settling (tds)", "%s", p)
	}
	if w := tg.warns.all(); len(w) > 0 {
		t.Logf("tds: pool warnings (%d): %s", len(w), strings.Join(w[:min(len(w), 30)], "; "))
	}
	r := result{name: "tds", ops: flatten(logs[0]), events: tg.events, settle: took}
	seen := make(map[int64]int)
	for _, id := range srv.TableIDs("soak_inserts") {
		seen[id]++
	}
	checkInserts(&v, &r.data, r.ops, seen, sched.start, ws)
	r.stats = tg.p.Stats()
	t.Log(summary([]result{r}, ws, sched.counts, end.Sub(sched.start)) + topErrors([]result{r}, 12))
	for _, s := range staleSevers(tg, ws, sched.start) {
		t.Logf("sever outside every fault window: %s", s)
	}
	for _, f := range failuresOutside(r, ws, sched.start, 8) {
		t.Logf("failed outside every fault window: %s", f)
	}

	if err := tg.p.Close(); err != nil {
		t.Errorf("tds: Close: %v", err)
	}
	probs, _ = settle(10*time.Second, func(ctx context.Context) ([]string, error) {
		if ss, _ := tg.sessions(ctx); len(ss) > 0 {
			return []string{fmt.Sprintf("%d server sessions of the app remain after Close: %v", len(ss), ss)}, nil
		}
		return nil, nil
	}, nil)
	for _, p := range probs {
		v.add("5 sessions after Close (tds)", "%s", p)
	}
	// The double runs in this process: close it (it waits for its own
	// goroutines) so that what remains is the client's. Its listener was
	// opened after the baseline and is closed with it.
	srv.Close()
	<-served
	gerr, ferr := base.verify(leakTimeout)
	if gerr != nil {
		v.add("6 no goroutine leak", "%v", gerr)
	}
	if ferr != nil {
		v.add("7 fds back to the baseline", "%v", ferr)
	}
	if !v.empty() {
		t.Errorf("soak tds (seed %d) broke invariants:%s", prm.seed, v.String())
	}
}
