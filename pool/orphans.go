package pool

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
)

// maxOrphans bounds what the pool remembers; older entries are dropped.
const maxOrphans = 1024

type orphan struct {
	id int64
	fp string
}

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
	q, ok := c.(driver.QueryerContext)
	if !ok {
		return 0, ""
	}
	rows, err := q.QueryContext(ctx, query, nil)
	if err != nil {
		return 0, ""
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if len(dest) != 2 || rows.Next(dest) != nil {
		return 0, ""
	}
	id := toInt64(dest[0])
	fp := toString(dest[1])
	if id <= 0 || !safeLiteral(fp) {
		return 0, ""
	}
	return id, fp
}

func (p *Pool) addOrphan(id int64, fp string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.orphans) >= maxOrphans {
		p.orphans = p.orphans[1:]
	}
	p.orphans = append(p.orphans, orphan{id, fp})
}

// reapOrphans ends the server sessions of connections the pool lost, once
// the path answers again. It runs on the prober's or the event loop's
// goroutine, bounded by ProbeTimeout.
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
	c, err := p.db.Conn(ctx)
	if err != nil {
		p.log.Warn("flapguard: orphan reaping skipped", "err", p.redact(err.Error()))
		return
	}
	defer c.Close()
	reaped := 0
	for _, o := range list {
		var n int
		if err := c.QueryRowContext(ctx, p.drv.SessionCheck(o.id, quoteLiteral(o.fp))).Scan(&n); err != nil || n == 0 {
			continue // gone already, or not ours any more
		}
		if _, err := c.ExecContext(ctx, p.drv.KillSession(o.id)); err != nil {
			p.log.Warn("flapguard: could not end orphan session", "id", o.id, "err", p.redact(err.Error()))
			continue
		}
		reaped++
	}
	p.stats.orphansReaped.Add(uint64(reaped))
	p.emit(Event{Kind: EventOrphansReaped, Count: reaped, Reason: fmt.Sprintf("%d of %d lost sessions still present", reaped, len(list))})
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
