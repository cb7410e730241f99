package pgxadapter

import (
	"cmp"
	"context"
	"database/sql/driver"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Warming a reopened conn (pool.Driver.Warm).
//
// In its default mode (QueryExecModeCacheStatement) pgx prepares a
// statement the first time a conn runs it, one round trip, and then runs
// it, another (conn.go:907-917, getStatementDescription, pgx v5.12.0); on
// a 40ms path the first request after the pool was rebuilt takes 80ms
// where every later one takes 40ms. The pool knows which statements its
// conns used: pgx announces each such prepare to the conn's tracer under
// the cache's own name (conn.go:329-331, "stmtcache_" + a hash of the
// text), and the adapter installs a tracer (recorder) that keeps the most
// used ones. When the pool rebuilds, warm prepares them on each new conn
// in one round trip before any request gets it, through pgx's own batch
// path: the conn then holds exactly what it would after a batch of those
// statements (prepared on the server, in pgx's statement cache), and the
// first use of each costs one round trip.
//
// Nothing is run: a batch prepares every new statement first (conn.go:
// 1189-1244) and then builds each query's arguments in order, returning at
// the first that fails, before anything is sent to run (conn.go:1251-1257).
// The first query of the warm-up batch is a guard with no parameters given
// one argument, which always fails; and every statement is given the same
// argument, a channel, which no codec encodes, so each would fail on its
// own too. TestWarmRunsNothing holds pgx to it.
const (
	warmMax   = 16      // statements prepared per reopened conn, at most
	keepMax   = 64      // statements remembered per pool
	keepSQL   = 4 << 10 // longer texts are not remembered
	cacheName = "stmtcache_"
	warmGuard = "SELECT 1 /* flapguard: warm-up guard, never runs */"
)

// neverEncoded is the argument given to every query of the warm-up batch:
// a non-nil channel (a nil one would encode as NULL) has no encoding.
var neverEncoded = make(chan struct{})

// recorder is the pgx tracer the adapter installs on a pool's config: it
// remembers the statements pgx's statement cache prepared on the pool's
// conns. Its other methods do nothing.
type recorder struct {
	mu    sync.Mutex // protects following
	seen  map[string]*seenStmt
	clock uint64
}

type seenStmt struct {
	sql, name  string
	uses, last uint64
}

var (
	_ pgx.QueryTracer   = (*recorder)(nil)
	_ pgx.PrepareTracer = (*recorder)(nil)
)

func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (r *recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *recorder) TracePrepareStart(ctx context.Context, _ *pgx.Conn, d pgx.TracePrepareStartData) context.Context {
	if strings.HasPrefix(d.Name, cacheName) && len(d.SQL) <= keepSQL {
		r.note(d.Name, d.SQL)
	}
	return ctx
}

func (r *recorder) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// note counts a prepare of sql. At capacity the least used (then least
// recently) statement makes room; counts halve every 1024 notes, so what
// was hot long ago gives way.
func (r *recorder) note(name, sql string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = make(map[string]*seenStmt)
	}
	r.clock++
	if r.clock%1024 == 0 {
		for _, s := range r.seen {
			s.uses /= 2
		}
	}
	if s, ok := r.seen[sql]; ok {
		s.uses++
		s.last = r.clock
		return
	}
	if len(r.seen) >= keepMax {
		var victim *seenStmt
		for _, s := range r.seen {
			if victim == nil || s.uses < victim.uses || s.uses == victim.uses && s.last < victim.last {
				victim = s
			}
		}
		delete(r.seen, victim.sql)
	}
	r.seen[sql] = &seenStmt{sql: sql, name: name, uses: 1, last: r.clock}
}

// hot returns up to n statements, most used first.
func (r *recorder) hot(n int) []seenStmt {
	r.mu.Lock()
	defer r.mu.Unlock()
	all := make([]seenStmt, 0, len(r.seen))
	for _, s := range r.seen {
		all = append(all, *s)
	}
	slices.SortFunc(all, func(a, b seenStmt) int {
		return cmp.Or(cmp.Compare(b.uses, a.uses), cmp.Compare(b.last, a.last))
	})
	return all[:min(n, len(all))]
}

// forget drops sql (it failed to prepare).
func (r *recorder) forget(sql string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.seen, sql)
}

// warm prepares the pool's hot statements on a reopened conn (see above).
// It returns an error only when the conn is unusable.
func warm(ctx context.Context, c driver.Conn, more func() bool) error {
	sc, ok := c.(*stdlib.Conn)
	if !ok {
		return nil
	}
	pc := sc.Conn()
	cfg := pc.Config()
	r, ok := cfg.Tracer.(*recorder)
	if !ok || cfg.DefaultQueryExecMode != pgx.QueryExecModeCacheStatement || cfg.StatementCacheCapacity <= 1 {
		return nil // another mode runs a batch differently: never warm it
	}
	// A statement that fails to prepare (dropped since) spoils the batch:
	// it is forgotten and the batch sent once more without it.
	for range 2 {
		hot := r.hot(min(warmMax, cfg.StatementCacheCapacity-1))
		if len(hot) == 0 || !more() {
			return nil
		}
		b := &pgx.Batch{}
		b.Queue(warmGuard, neverEncoded)
		for _, s := range hot {
			b.Queue(s.sql, neverEncoded)
		}
		err := pc.SendBatch(ctx, b).Close()
		if pc.IsClosed() {
			return errors.Join(errors.New("pgxadapter: warm-up lost the connection"), err)
		}
		var pe pgx.ErrPreprocessingBatch
		if !errors.As(err, &pe) || pe.SQL() == warmGuard {
			return nil // prepared (the guard failed its build), or not ours to judge
		}
		r.forget(pe.SQL())
	}
	return nil
}
