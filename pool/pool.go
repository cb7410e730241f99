package pool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/flapguard/flapguard/detect"
)

// Pool is a database/sql pool that can be discarded as a whole while its
// callers keep the same *sql.DB. It is safe for concurrent use.
//
// A Pool owns two background goroutines (the prober and the tunnel-event
// loop), stopped by Close.
type Pool struct {
	db      *sql.DB
	cfg     Config
	log     *slog.Logger
	drv     Driver // zero for a driver without socket control
	conn    *connector
	dialer  *dialer // nil without socket control
	secrets []string
	cfgErr  error // a bad Config given to OpenDB, returned by every Connect

	gen      atomic.Uint64
	closed   atomic.Bool
	pingEWMA atomic.Int64 // nanoseconds

	mu        sync.Mutex // protects following
	conns     map[*conn]struct{}
	pending   map[*socketSet]uint64 // connects in progress, by generation
	closedOps uint64                // ops counted by conns since closed
	orphans   []orphan              // server sessions of lost conns, to reap

	stats  counters
	gate   gate
	health health

	events    chan detect.Event
	trigger   chan struct{}
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open opens a pool for a database/sql driver, like sql.Open: it validates
// its arguments but does not connect; call DB().PingContext to check the
// server.
//
// "sqlserver" and "mssql" (go-mssqldb) are built in with full protection:
// the pool dials every socket, so it can harden them, sever them and bound
// go-mssqldb's waits. "pgx" and "mysql" get the same after a blank import
// of pool/pgxadapter or pool/mysqladapter. Any other registered
// database/sql driver works with soft reset and liveness only (no socket
// control; Stats().SocketControl is false).
func Open(driverName, dataSourceName string, cfg Config) (*Pool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	secrets := secretsOf(dataSourceName)
	if d, ok := lookupDriver(driverName); ok {
		p := newPool(cfg, d, secrets)
		inner, err := d.NewConnector(dataSourceName, p.dialer.DialContext)
		if err != nil {
			return nil, fmt.Errorf("pool: open %s: bad DSN: %w", driverName, redactErr(err, secrets))
		}
		return p.start(inner), nil
	}
	inner, err := genericConnector(driverName, dataSourceName)
	if err != nil {
		return nil, redactErr(err, secrets)
	}
	return newPool(cfg, Driver{}, secrets).start(inner), nil
}

// OpenFunc opens a pool with full socket control for any driver whose
// connector can take a dial function (pgx's DialFunc, mysql's DialFunc,
// go-mssqldb's Dialer, ...): newConnector is called once with the pool's
// dialer.
func OpenFunc(newConnector func(dial DialFunc) (driver.Connector, error), cfg Config) (*Pool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if newConnector == nil {
		return nil, fmt.Errorf("pool: OpenFunc: newConnector is nil")
	}
	p := newPool(cfg, Driver{NewConnector: func(string, DialFunc) (driver.Connector, error) { return nil, nil }}, nil)
	inner, err := newConnector(p.dialer.DialContext)
	if err != nil {
		return nil, fmt.Errorf("pool: OpenFunc: %w", err)
	}
	if inner == nil {
		return nil, fmt.Errorf("pool: OpenFunc: newConnector returned a nil connector")
	}
	return p.start(inner), nil
}

// OpenDB opens a pool over a driver's connector, like sql.OpenDB. The pool
// cannot see the connector's sockets, so it has soft reset and liveness but
// no sever (use Open or OpenFunc for that). A bad cfg is reported by every
// attempt to connect (DB().Ping returns it), since OpenDB has no error
// result.
func OpenDB(c driver.Connector, cfg Config) *Pool {
	cfg2, err := cfg.withDefaults()
	if err != nil {
		cfg2, _ = Config{Logger: cfg.Logger}.withDefaults()
		cfg2.ProbeInterval = off
	}
	if c == nil && err == nil {
		err = fmt.Errorf("pool: OpenDB: connector is nil")
	}
	p := newPool(cfg2, Driver{}, nil)
	p.cfgErr = err
	return p.start(c)
}

func newPool(cfg Config, d Driver, secrets []string) *Pool {
	p := &Pool{
		cfg:     cfg,
		log:     cfg.logger(),
		drv:     d,
		secrets: secrets,
		conns:   make(map[*conn]struct{}),
		pending: make(map[*socketSet]uint64),
		events:  make(chan detect.Event, 64),
		trigger: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	p.gen.Store(1)
	p.health.init(cfg.now)
	p.health.cooldown = cfg.ResetCooldown
	if d.NewConnector != nil {
		p.dialer = newDialer(p)
	}
	return p
}

func (p *Pool) start(inner driver.Connector) *Pool {
	p.conn = &connector{p: p, inner: inner}
	p.db = sql.OpenDB(p.conn)
	p.wg.Add(2)
	go p.eventLoop()
	go p.probeLoop()
	return p
}

// DB returns the pool's *sql.DB. It stays the same for the Pool's life:
// hand it to existing code, sqlx or GORM. Do not Close it directly; Close
// the Pool.
func (p *Pool) DB() *sql.DB { return p.db }

// Reset discards the whole pool, like .NET's SqlConnection.ClearAllPools: a
// new generation begins, idle connections are closed now, and connections
// in use are discarded when returned. No query fails because of a Reset by
// itself. Use it when old connections are suspect but not known to be dead
// (a planned rekey, a failover). After Close it does nothing.
func (p *Pool) Reset(reason string) { p.reset(reason, false, false) }

// Sever is a Reset that also closes the sockets of every old-generation
// connection, so requests hung on a blackholed connection fail now instead
// of at their deadline (or after ~15 minutes of retransmits without one).
// Use it when the path is known dead (a tunnel DOWN, a failed probe).
// Without socket control (OpenDB) it is a Reset.
func (p *Pool) Sever(reason string) { p.reset(reason, true, false) }

func (p *Pool) reset(reason string, sever, auto bool) {
	if p.closed.Load() {
		return
	}
	if auto && !p.health.allowReset() {
		return
	}
	gen := p.gen.Add(1)
	p.health.noteReset()
	p.mu.Lock()
	old := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		if c.l().gen < gen {
			old = append(old, c)
		}
	}
	var pend []*socketSet
	if sever {
		for s, g := range p.pending {
			if g < gen {
				pend = append(pend, s)
			}
		}
	}
	p.mu.Unlock()

	closed, severed := 0, 0
	for _, c := range old {
		if c.state.CompareAndSwap(stateIdle, stateRetired) || c.state.CompareAndSwap(stateFresh, stateRetired) {
			closed++
			severed += c.retire(sever)
			continue
		}
		if l := c.l(); sever && l.socks != nil && l.gen < gen {
			l.bad.Store(true)
			severed += l.socks.closeAll()
		}
	}
	for _, s := range pend {
		severed += s.closeAll()
	}
	if sever && p.dialer != nil {
		severed += p.dialer.closeLoose(gen)
	}
	kind := EventReset
	p.stats.resets.Add(1)
	if sever {
		kind = EventSever
		p.stats.severs.Add(1)
		p.stats.severedSockets.Add(uint64(severed))
	}
	p.stats.resetClosed.Add(uint64(closed))
	p.emit(Event{Kind: kind, Generation: gen, Reason: reason, Count: closed + severed})
}

// abandonPending cuts the connects that started before generation gen (into
// a path that was dead then); their connectors try again (see dial).
func (p *Pool) abandonPending(gen uint64) int {
	p.mu.Lock()
	var pend []*socketSet
	for s, g := range p.pending {
		if g < gen {
			pend = append(pend, s)
		}
	}
	p.mu.Unlock()
	n := 0
	for _, s := range pend {
		s.abandoned.Store(true)
		n += s.closeAll()
	}
	return n
}

func (p *Pool) register(c *conn) {
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
}

func (p *Pool) unregister(c *conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.closedOps += c.ops.Load()
	p.mu.Unlock()
}

func (p *Pool) addPending(s *socketSet, gen uint64) {
	p.mu.Lock()
	p.pending[s] = gen
	p.mu.Unlock()
}

func (p *Pool) removePending(s *socketSet) {
	p.mu.Lock()
	delete(p.pending, s)
	p.mu.Unlock()
}

// snapshot returns the registered conns.
func (p *Pool) snapshot() []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		out = append(out, c)
	}
	return out
}

// totalOps counts the operations that reached the server, ever.
func (p *Pool) totalOps() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.closedOps
	for c := range p.conns {
		n += c.ops.Load()
	}
	return n
}

// Close closes the pool: its *sql.DB, its background goroutines (it waits
// for them) and every connection. It is idempotent. Requests hung on a dead
// connection are released too (their sockets are closed).
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		close(p.done)
		p.gate.shut()
		p.closeErr = p.db.Close()
		p.wg.Wait()
		// database/sql closes in-use conns only when they are released; a
		// request hung on a blackholed socket would never release its conn.
		for _, c := range p.snapshot() {
			if l := c.l(); l.socks != nil {
				l.bad.Store(true)
				l.socks.closeAll()
			}
		}
		if p.dialer != nil {
			p.dialer.closeLoose(^uint64(0))
		}
	})
	return p.closeErr
}

// genericConnector builds a connector for a database/sql driver registered
// by name, without socket control.
func genericConnector(name, dsn string) (driver.Connector, error) {
	found := false
	for _, n := range sql.Drivers() {
		if n == name {
			found = true
			break
		}
	}
	if !found {
		return nil, errUnknownDriver(name)
	}
	db, err := sql.Open(name, dsn)
	if err != nil {
		return nil, fmt.Errorf("pool: open %s: %w", name, err)
	}
	drv := db.Driver()
	db.Close()
	if dc, ok := drv.(driver.DriverContext); ok {
		c, err := dc.OpenConnector(dsn)
		if err != nil {
			return nil, fmt.Errorf("pool: open %s: bad DSN: %w", name, err)
		}
		return c, nil
	}
	return dsnConnector{drv: drv, dsn: dsn}, nil
}

type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

func (p *Pool) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flapguard.Pool(gen=%d state=%s)", p.gen.Load(), p.health.get())
	return b.String()
}
