package pool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxOrphans bounds what the pool remembers; older entries are dropped.
const maxOrphans = 1024

type orphan struct {
	id    int64
	fp    string
	tries int // reap attempts that could not tell; dropped after maxReapTries
}

const maxReapTries = 5

func (p *Pool) reaping() bool {
	d := p.drv
	if d.SessionQuery == "" || d.SessionCheck == nil || d.KillSession == nil {
		return false
	}
	switch p.cfg.Orphans {
	case OrphansOn:
		return true
	case OrphansAuto:
		return !d.ReapNeedsPermission
	}
	return false
}

// querySession asks a new connection for its server session id and
// fingerprint. Failure leaves (0, "") and the conn is simply not reaped.
func querySession(ctx context.Context, c driver.Conn, query string) (int64, string) {
	row, err := rawQueryRow(ctx, c, query)
	if err != nil || len(row) != 2 {
		return 0, ""
	}
	id := toInt64(row[0])
	fp := toString(row[1])
	if id <= 0 || !safeLiteral(fp) {
		return 0, ""
	}
	return id, fp
}

// rawQueryRow runs a query without arguments on a driver conn of the
// pool's own (outside database/sql) and returns its first row.
// go-mssqldb has no QueryerContext: it goes through a prepared statement.
func rawQueryRow(ctx context.Context, c driver.Conn, query string) ([]driver.Value, error) {
	var rows driver.Rows
	var err error
	if q, ok := c.(driver.QueryerContext); ok {
		rows, err = q.QueryContext(ctx, query, nil)
	} else {
		var st driver.Stmt
		if pc, ok := c.(driver.ConnPrepareContext); ok {
			st, err = pc.PrepareContext(ctx, query)
		} else {
			st, err = c.Prepare(query)
		}
		if err != nil {
			return nil, err
		}
		defer st.Close()
		if sq, ok := st.(driver.StmtQueryContext); ok {
			rows, err = sq.QueryContext(ctx, nil)
		} else {
			rows, err = st.Query(nil) //nolint:staticcheck // the driver has nothing newer
		}
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		return nil, err
	}
	return dest, nil
}

func (p *Pool) addOrphan(id int64, fp string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.orphans) >= maxOrphans {
		p.orphans = p.orphans[1:]
	}
	p.orphans = append(p.orphans, orphan{id: id, fp: fp})
}

// reapOrphans ends the server sessions of connections the pool lost, once
// the path answers again. It runs on the prober's or the event loop's
// goroutine, on a connection of its own outside database/sql's pool (which
// may be saturated just then), bounded by ProbeTimeout. Sessions it could
// not check are kept for the next round, up to maxReapTries.
func (p *Pool) reapOrphans() {
	if !p.reaping() {
		return
	}
	p.mu.Lock()
	list := p.orphans
	p.orphans = nil
	p.mu.Unlock()
	if len(list) == 0 || p.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.ProbeTimeout)
	defer cancel()
	var keep []orphan
	defer func() {
		if len(keep) > 0 {
			p.mu.Lock()
			p.orphans = append(keep, p.orphans...)
			if len(p.orphans) > maxOrphans {
				p.orphans = p.orphans[len(p.orphans)-maxOrphans:]
			}
			p.mu.Unlock()
		}
	}()
	retry := func(o orphan) {
		if o.tries++; o.tries < maxReapTries {
			keep = append(keep, o)
		}
	}
	rc, err := p.conn.dial(ctx)
	if err != nil {
		p.log.Info("flapguard: orphan reaping postponed", "err", p.redact(err.Error()))
		for _, o := range list {
			retry(o)
		}
		return
	}
	defer rc.close()
	reaped := 0
	for i, o := range list {
		row, err := rawQueryRow(ctx, rc.inner, p.drv.SessionCheck(o.id, quoteLiteral(o.fp)))
		if err != nil || len(row) != 1 {
			for _, o := range list[i:] {
				retry(o)
			}
			p.log.Info("flapguard: orphan reaping postponed", "err", errString(p, err))
			break
		}
		if toInt64(row[0]) == 0 {
			continue // gone already, or not ours any more
		}
		if _, err := rawQueryRow(ctx, rc.inner, p.drv.KillSession(o.id)); err != nil && !errors.Is(err, io.EOF) {
			p.log.Warn("flapguard: could not end orphan session", "id", o.id, "err", p.redact(err.Error()))
			retry(o)
			continue
		}
		reaped++
	}
	p.stats.orphansReaped.Add(uint64(reaped))
	p.emit(Event{Kind: EventOrphansReaped, Count: reaped, Reason: fmt.Sprintf("%d of %d lost sessions still present", reaped, len(list))})
}

func errString(p *Pool, err error) string {
	if err == nil {
		return "unexpected result"
	}
	return p.redact(err.Error())
}

// safeLiteral admits fingerprints made of the characters timestamps,
// addresses and ports use, so quoting them is trivially safe in every SQL
// dialect (no quotes, no backslashes: MySQL treats \ as an escape).
func safeLiteral(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, r := range s {
		ok := r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(" .:-+@|_[]/T", r)
		if !ok {
			return false
		}
	}
	return true
}

func quoteLiteral(s string) string { return "'" + s + "'" }

func toInt64(v driver.Value) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case uint64:
		if v < 1<<63 {
			return int64(v)
		}
	case []byte:
		return parseDigits(string(v))
	case string:
		return parseDigits(v)
	}
	return 0
}

func parseDigits(s string) int64 {
	var n int64
	if s == "" || len(s) > 18 {
		return 0
	}
	for _, b := range s {
		if b < '0' || b > '9' {
			return 0
		}
		n = n*10 + int64(b-'0')
	}
	return n
}

func toString(v driver.Value) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}
