package pool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// maxOrphans bounds what the pool remembers; older entries are dropped.
const maxOrphans = 1024

// orphanWindow: a connection cut by its caller's deadline is reaped only
// if a dead path is found within this long after the cut. On a healthy
// path the server finishes or aborts the statement itself, as it would
// under plain database/sql, and nothing is killed.
const orphanWindow = 10 * time.Second

// orphanSlack absorbs the round trip of the reaping query itself when
// comparing the session's start with the connection's (SessionCheck).
const orphanSlack = time.Second

// orphan is a server session a lost connection may have left behind.
type orphan struct {
	id          int64
	fp          string
	connectedAt time.Time
	cutAt       time.Time // candidates: when the caller's deadline cut it
	tries       int       // reap attempts that could not tell; dropped after maxReapTries
}

const maxReapTries = 5

func (r *rawConn) orphan() orphan {
	return orphan{id: r.sessionID, fp: r.sessionFP, connectedAt: r.connectedAt, cutAt: r.p.cfg.now()}
}

func (p *Pool) reaping() bool {
	d := p.drv
	if (d.SessionOf == nil && d.SessionQuery == "") || d.SessionCheck == nil || d.KillSession == nil {
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

func (p *Pool) addOrphan(o orphan) {
	if !p.reaping() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.orphans) >= maxOrphans {
		p.orphans = p.orphans[1:]
	}
	p.orphans = append(p.orphans, o)
}

func (p *Pool) addOrphanCandidate(o orphan) {
	if !p.reaping() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.candidates) >= maxOrphans {
		p.candidates = p.candidates[1:]
	}
	p.candidates = append(p.candidates, o)
}

// promoteOrphanCandidates is called when the supervisor finds a dead path
// or dead flows: deadline-cut connections from just before are likely to
// have left sessions behind (their goodbye was swallowed), so they are
// reaped with the lost ones. Older candidates are forgotten.
func (p *Pool) promoteOrphanCandidates() {
	now := p.cfg.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range p.candidates {
		if now.Sub(o.cutAt) <= orphanWindow {
			p.orphans = append(p.orphans, o)
		}
	}
	p.candidates = nil
	if len(p.orphans) > maxOrphans {
		p.orphans = p.orphans[len(p.orphans)-maxOrphans:]
	}
}

// reap starts orphan reaping on a goroutine of the supervisor's, if there
// is anything to reap and no reaping runs.
func (s *supervisor) reap() {
	p := s.p
	if s.reaping || !p.reaping() {
		return
	}
	p.mu.Lock()
	n := len(p.orphans)
	p.mu.Unlock()
	if n == 0 {
		return
	}
	s.reaping = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.reapOrphans(s.ctx)
		select {
		case s.calls <- func() { s.reaping = false }:
		case <-s.ctx.Done():
		}
	}()
}

// reapOrphans ends the server sessions of connections the pool lost, once
// the path answers again. It runs on a connection of its own outside
// database/sql's pool (which may be saturated just then), bounded by
// ProbeTimeout. A session is ended only if its id and fingerprint (or age)
// still match, so a reused id is never hit; sessions it could not check
// are kept for the next round, up to maxReapTries.
func (p *Pool) reapOrphans(parent context.Context) {
	p.mu.Lock()
	list := p.orphans
	p.orphans = nil
	p.mu.Unlock()
	if len(list) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(parent, p.cfg.ProbeTimeout)
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
	now := p.cfg.now()
	for i, o := range list {
		age := max(now.Sub(o.connectedAt)-orphanSlack, 0)
		fp := ""
		if o.fp != "" {
			fp = quoteLiteral(o.fp)
		}
		row, err := rawQueryRow(ctx, rc.inner, p.drv.SessionCheck(o.id, fp, age))
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

// sessionOf returns a new connection's server session id and fingerprint:
// from the driver without a round trip where it can (SessionOf), else by
// SessionQuery. Failure leaves (0, "") and the conn is simply not reaped.
func (p *Pool) sessionOf(ctx context.Context, c driver.Conn) (int64, string) {
	if f := p.drv.SessionOf; f != nil {
		if id := f(c); id > 0 {
			return id, ""
		}
		return 0, ""
	}
	row, err := rawQueryRow(ctx, c, p.drv.SessionQuery)
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
			rows, err = st.Query(nil) //lint:ignore SA1019 deliberate fallback: the driver has nothing newer
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

func errString(p *Pool, err error) string {
	if err == nil {
		return "unexpected result"
	}
	return p.redact(err.Error())
}

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
