//go:build linux

package soak

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// violations collects invariant breaches, by invariant, for one report.
type violations struct {
	by    map[string][]string
	order []string
}

func (v *violations) add(inv, format string, args ...any) {
	if v.by == nil {
		v.by = make(map[string][]string)
	}
	if _, ok := v.by[inv]; !ok {
		v.order = append(v.order, inv)
	}
	v.by[inv] = append(v.by[inv], fmt.Sprintf(format, args...))
}

func (v *violations) empty() bool { return len(v.order) == 0 }

// String lists every breached invariant with up to 25 examples each.
func (v *violations) String() string {
	var b strings.Builder
	for _, inv := range v.order {
		lines := v.by[inv]
		fmt.Fprintf(&b, "\n  %s: %d violation(s)", inv, len(lines))
		for i, l := range lines {
			if i == 25 {
				fmt.Fprintf(&b, "\n    ... %d more", len(lines)-i)
				break
			}
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

// dataStats is what the data check counted, for the summary.
type dataStats struct {
	unknownPresent, unknownAbsent [numOpKinds]int
	rows, transferRows            int
}

// describe names an operation for a report: who, when (from t0), how long,
// its deadline, its error, and the fault windows it overlapped.
func describe(r opRecord, t0 time.Time, ws []window) string {
	dl := "none"
	if r.deadline > 0 {
		dl = r.deadline.Round(time.Millisecond).String()
	}
	var fs []string
	for _, w := range overlapping(ws, r.start, r.start.Add(r.dur)) {
		fs = append(fs, fmt.Sprintf("%s [+%v..+%v]", w.what, w.start.Sub(t0).Round(time.Millisecond), w.end.Sub(t0).Round(time.Millisecond)))
	}
	if len(fs) == 0 {
		fs = []string{"none"}
	}
	s := fmt.Sprintf("%s id %d (worker %d) at +%v took %v, deadline %s, outcome %s",
		r.kind, r.id, r.worker, r.start.Sub(t0).Round(time.Millisecond), r.dur.Round(time.Millisecond), dl, r.out)
	if r.slow > 0 {
		s += fmt.Sprintf(", slow insert (%v on the server)", r.slow.Round(time.Millisecond))
	}
	if r.kind == opTransfer {
		s += fmt.Sprintf(", %d from %d to %d", r.amount, r.src, r.dst)
	}
	if r.err != "" {
		s += fmt.Sprintf(", err %q", r.err)
	}
	return s + r.note + ", faults: " + strings.Join(fs, "; ")
}

// checkInserts checks invariants 1, 2 and 4 for inserts against seen, the
// number of rows per client id in the table.
func checkInserts(v *violations, st *dataStats, ops []opRecord, seen map[int64]int, t0 time.Time, ws []window) {
	attempted := make(map[int64]bool)
	for _, r := range ops {
		if r.kind != opInsert {
			continue
		}
		attempted[r.id] = true
		n := seen[r.id]
		switch r.out {
		case outOK:
			if n != 1 {
				v.add("1 acknowledged insert present exactly once", "%d rows for %s", n, describe(r, t0, ws))
			}
		case outUnsent:
			if n != 0 {
				v.add("2 insert failed before send is absent", "%d rows for %s", n, describe(r, t0, ws))
			}
		case outUnknown:
			switch {
			case n > 1:
				v.add("4 outcome-unknown write present at most once", "%d rows for %s", n, describe(r, t0, ws))
			case n == 1:
				st.unknownPresent[opInsert]++
			default:
				st.unknownAbsent[opInsert]++
			}
		}
	}
	for id, n := range seen {
		st.rows += n
		if !attempted[id] {
			v.add("1 acknowledged insert present exactly once", "%d rows with client id %d that no worker inserted", n, id)
		}
	}
}

type transferRow struct {
	n              int
	src, dst       int
	amount         int64
	inconsistent   bool // rows with this tid disagree
	srcMax, dstMax int
}

// checkLedger checks invariants 3 and 4 for transfers: the total, each
// account against the transfers present, each transfer's presence
// against its outcome.
func checkLedger(v *violations, st *dataStats, ops []opRecord, rows map[int64]*transferRow, balances map[int]int64, badReads []string, t0 time.Time, ws []window) {
	const inv = "3 ledger total constant, committed transfers reflected once"
	var total int64
	for _, b := range balances {
		total += b
	}
	if total != numAccounts*initialBalance || len(balances) != numAccounts {
		v.add(inv, "ledger total %d over %d accounts, want %d over %d", total, len(balances), numAccounts*initialBalance, numAccounts)
	}
	want := make(map[int]int64)
	for i := 1; i <= numAccounts; i++ {
		want[i] = initialBalance
	}
	recs := make(map[int64]opRecord)
	for _, r := range ops {
		if r.kind == opTransfer {
			recs[r.id] = r
		}
	}
	for tid, row := range rows {
		st.transferRows += row.n
		r, ok := recs[tid]
		switch {
		case !ok:
			v.add(inv, "%d transfer rows with id %d that no worker made", row.n, tid)
			continue
		case row.inconsistent || row.src != r.src || row.dst != r.dst || row.amount != r.amount:
			v.add(inv, "transfer row %d says %d from %d to %d; the worker sent %s", tid, row.amount, row.src, row.dst, describe(r, t0, ws))
		}
		// The ledger must reflect each present transfer once per row.
		want[row.src] -= int64(row.n) * row.amount
		want[row.dst] += int64(row.n) * row.amount
	}
	for id := 1; id <= numAccounts; id++ {
		if balances[id] != want[id] {
			v.add(inv, "account %d holds %d; the transfers present say %d", id, balances[id], want[id])
		}
	}
	for _, r := range recs {
		n := 0
		if row := rows[r.id]; row != nil {
			n = row.n
		}
		switch r.out {
		case outOK:
			if n != 1 {
				v.add(inv, "%d rows for acknowledged %s", n, describe(r, t0, ws))
			}
		case outUnsent:
			if n != 0 {
				v.add(inv, "%d rows for %s, known not committed", n, describe(r, t0, ws))
			}
		case outUnknown:
			switch {
			case n > 1:
				v.add("4 outcome-unknown write present at most once", "%d rows for %s", n, describe(r, t0, ws))
			case n == 1:
				st.unknownPresent[opTransfer]++
			default:
				st.unknownAbsent[opTransfer]++
			}
		}
	}
	for _, b := range badReads {
		v.add(inv, "a read saw the total change: %s", b)
	}
}

// loadSQLState reads the tables over the admin path.
func loadSQLState(ctx context.Context, db *sql.DB) (seen map[int64]int, rows map[int64]*transferRow, balances map[int]int64, err error) {
	seen = make(map[int64]int)
	if err := scanAll(ctx, db, "SELECT cid, count(*) FROM soak_inserts GROUP BY cid", func(s func(...any) error) error {
		var id int64
		var n int
		err := s(&id, &n)
		seen[id] = n
		return err
	}); err != nil {
		return nil, nil, nil, err
	}
	rows = make(map[int64]*transferRow)
	if err := scanAll(ctx, db, "SELECT tid, count(*), min(src), max(src), min(dst), max(dst), min(amount), max(amount) FROM soak_transfers GROUP BY tid",
		func(s func(...any) error) error {
			var tid, amin, amax int64
			var r transferRow
			err := s(&tid, &r.n, &r.src, &r.srcMax, &r.dst, &r.dstMax, &amin, &amax)
			r.amount = amin
			r.inconsistent = r.src != r.srcMax || r.dst != r.dstMax || amin != amax
			rows[tid] = &r
			return err
		}); err != nil {
		return nil, nil, nil, err
	}
	balances = make(map[int]int64)
	err = scanAll(ctx, db, "SELECT id, balance FROM soak_accounts", func(s func(...any) error) error {
		var id int
		var b int64
		err := s(&id, &b)
		balances[id] = b
		return err
	})
	return seen, rows, balances, err
}

func scanAll(ctx context.Context, db *sql.DB, q string, each func(scan func(...any) error) error) error {
	rs, err := db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	defer rs.Close()
	for rs.Next() {
		if err := each(rs.Scan); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return rs.Err()
}

// sessionProblems checks invariant 5 once: at most maxOpenConns+1 server
// sessions of the app, each with its client socket still open, and no more
// open client sockets than the pool's open conns + 1 (a probe).
func sessionProblems(ctx context.Context, sessions func(context.Context) ([]serverSession, error), socks *sockets, poolOpen, max int, explain func(port int) string) ([]string, error) {
	ss, err := sessions(ctx)
	if err != nil {
		return nil, err
	}
	open := socks.open()
	var out []string
	if len(ss) > max+1 {
		out = append(out, fmt.Sprintf("%d server sessions of the app, more than MaxOpenConns %d + 1", len(ss), max))
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].id < ss[j].id })
	for _, s := range ss {
		if !open[s.port] {
			out = append(out, fmt.Sprintf("orphan: server session %d (client port %d, %s) has no open client socket%s", s.id, s.port, s.state, explain(s.port)))
		}
	}
	if len(open) > poolOpen+1 {
		out = append(out, fmt.Sprintf("%d client sockets open, more than the pool's %d open conns + 1", len(open), poolOpen))
	}
	return out, nil
}

// settle polls check until it reports no problem or timeout passes, and
// returns the last problems with how long it took. first, if not nil, is
// given the problems of the first poll (what settling had to fix).
func settle(timeout time.Duration, check func(context.Context) ([]string, error), first func([]string)) ([]string, time.Duration) {
	start := time.Now()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		probs, err := check(ctx)
		cancel()
		if err != nil {
			probs = append(probs, "checking: "+err.Error())
		}
		if i == 0 && first != nil && len(probs) > 0 {
			first(probs)
		}
		if len(probs) == 0 || time.Since(start) > timeout {
			return probs, time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
