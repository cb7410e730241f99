package pool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Pool is a database/sql pool that can be discarded as a whole while its
// callers keep the same *sql.DB. It is safe for concurrent use.
//
// A Pool owns one background goroutine (the supervisor) and the jobs it
// starts, stopped by Close, or by closing its *sql.DB.
type Pool struct {
	db      *sql.DB
	cfg     Config
	log     *slog.Logger
	drv     Driver // zero for a driver without socket control
	conn    *connector
	dialer  *dialer // nil without socket control
	secrets []string
	cfgErr  error // a bad Config given to OpenDB, returned by every Connect

	gen         atomic.Uint64
	closed      atomic.Bool
	healthNow   atomic.Int32 // a copy of the supervisor's Health
	waiting     atomic.Bool  // a request waits at the gate: probe now
	pingEWMA    atomic.Int64 // nanoseconds
	connectEWMA atomic.Int64 // nanoseconds
	coarse      atomic.Int64 // monoNow as of the supervisor's last clock tick (borrowNow)

	sentinel        *rawConn      // sentinel.go; protected by mu
	sentinelDialing atomic.Bool   // a sentinel connect runs
	demand          atomic.Uint64 // connects asked for by requests (passGate)
	// connectFailed: a connect for a request failed since the supervisor
	// last looked (a hint: it starts a check).
	connectFailed atomic.Bool
	sparesPending atomic.Int32  // spares an UP's check is still connecting
	nextID        atomic.Uint64 // conn ids, for the checks' verdicts
	logGate       logLimiter

	mu         sync.Mutex // protects following
	conns      map[*conn]struct{}
	pending    map[*socketSet]pendingConnect // connects in progress
	closedOps  uint64                        // ops counted by conns since closed
	orphans    []orphan                      // server sessions of lost conns, to reap
	candidates []orphan                      // sessions cut by their caller's deadline (see orphans.go)
	spares     []*rawConn                    // connections the checks that found the path back made (takeSpare)
	spareSig   chan struct{}                 // closed (and replaced) when a spare arrives or a pending one ends

	stats    counters
	gate     gate
	evidence evidence
	inbox    inbox
	sup      *supervisor

	closeOnce sync.Once
}

// Open opens a pool for a database/sql driver, like sql.Open: it validates
// its arguments but does not connect; call DB().PingContext to check the
// server.
//
// Full protection (the pool dials every socket, so it can harden, sever
// and bound the driver's waits) comes from an adapter package, imported
// for its side effect like a database/sql driver:
//
//	import _ "github.com/flapguard/flapguard/pool/mssqladapter" // "sqlserver", "mssql"
//	import _ "github.com/flapguard/flapguard/pool/pgxadapter"   // "pgx", "pgx/v5"
//	import _ "github.com/flapguard/flapguard/pool/mysqladapter" // "mysql"
//
// A driver that database/sql knows but no adapter registered is an error
// naming the import to add, unless Config.AllowSoftMode is set: then the
// pool works with soft reset and liveness only (Stats().SocketControl is
// false).
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
			return nil, fmt.Errorf("pool: open %s: bad DSN: %w", driverName, sealErr(err, secrets))
		}
		return p.start(inner), nil
	}
	if !isRegistered(driverName) {
		return nil, errUnknownDriver(driverName)
	}
	if !cfg.AllowSoftMode {
		return nil, errNoAdapter(driverName)
	}
	inner, err := genericConnector(driverName, dataSourceName)
	if err != nil {
		return nil, sealErr(err, secrets)
	}
	p := newPool(cfg, Driver{}, secrets)
	p.log.Warn("flapguard: driver has no adapter; soft reset and liveness only (no sever, no TCP hardening, no cancel guard)", "driver", driverName)
	return p.start(inner), nil
}

// OpenWithDialer opens a pool with full socket control for any driver whose
// connector can take a dial function (pgx's DialFunc, mysql's DialFunc,
// go-mssqldb's Dialer, ...): newConnector is called once with the pool's
// dialer, and every socket the connector dials through it is hardened,
// tracked and severable.
func OpenWithDialer(newConnector func(dial DialFunc) (driver.Connector, error), cfg Config) (*Pool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if newConnector == nil {
		return nil, errors.New("pool: OpenWithDialer: newConnector is nil")
	}
	p := newPool(cfg, Driver{NewConnector: func(string, DialFunc) (driver.Connector, error) { return nil, nil }}, nil)
	inner, err := newConnector(p.dialer.DialContext)
	if err != nil {
		return nil, fmt.Errorf("pool: OpenWithDialer: %w", err)
	}
	if inner == nil {
		return nil, errors.New("pool: OpenWithDialer: newConnector returned a nil connector")
	}
	return p.start(inner), nil
}

// OpenDB opens a pool over a driver's connector, like sql.OpenDB. The pool
// cannot see the connector's sockets, so it has soft reset and liveness but
// no sever (use Open or OpenWithDialer for that). When an adapter is
// registered for the connector's driver, its error rules apply as with
// Open. A bad cfg is reported by
// every attempt to connect (DB().Ping returns it), since OpenDB has no
// error result.
func OpenDB(c driver.Connector, cfg Config) *Pool {
	cfg2, err := cfg.withDefaults()
	if err != nil {
		cfg2, _ = Config{Logger: cfg.Logger}.withDefaults()
		cfg2.ProbeInterval = off
	}
	if c == nil && err == nil {
		err = errors.New("pool: OpenDB: connector is nil")
	}
	p := newPool(cfg2, adapterFor(c), nil) // adopt.go: the adapter's rules, no sockets
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
		pending: make(map[*socketSet]pendingConnect),
	}
	p.gen.Store(1)
	p.coarse.Store(p.monoNow())
	p.gate.onWait = func() {
		p.waiting.Store(true)
		p.sup.kick()
	}
	if d.NewConnector != nil {
		p.dialer = newDialer(p)
	}
	p.sup = newSupervisor(p)
	return p
}

func (p *Pool) start(inner driver.Connector) *Pool {
	p.conn = &connector{p: p, inner: p.timeConnects(inner)} // observe.go
	p.db = sql.OpenDB(p.watchConnects(p.conn))
	p.sup.start()
	return p
}

// DB returns the pool's *sql.DB. It stays the same for the Pool's life:
// hand it to existing code, sqlx or GORM. Closing it closes the Pool too.
func (p *Pool) DB() *sql.DB { return p.db }

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

// pendingConnect is a connect in progress: the generation and the time
// (the injected clock) it started in.
type pendingConnect struct {
	gen     uint64
	started time.Time
}

func (p *Pool) addPending(s *socketSet, gen uint64) {
	p.mu.Lock()
	p.pending[s] = pendingConnect{gen, p.cfg.now()}
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

// Close closes the pool: its *sql.DB, its supervisor (it waits for it and
// its jobs) and every connection, and it cuts the sockets of connections
// still in use, so requests hung on a dead path return. Closing the
// *sql.DB (as GORM, sqlx and ent do) stops the pool too, but like plain
// database/sql lets work in progress finish: its connections close when
// released. Both are idempotent and may be called in any order.
func (p *Pool) Close() error {
	err := p.db.Close() // calls connector.Close, which calls shutdown
	p.shutdown()
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
	return err
}

// shutdown stops everything the pool runs in the background. database/sql
// calls it through connector.Close from DB.Close.
func (p *Pool) shutdown() {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.gate.stop()
		p.sup.stop()
		p.mu.Lock()
		spares := p.spares
		p.spares = nil
		p.mu.Unlock()
		for _, rc := range spares {
			rc.close()
		}
		p.closeSentinel()
	})
}

// genericConnector builds a connector for a database/sql driver registered
// by name, without socket control.
func genericConnector(name, dsn string) (driver.Connector, error) {
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

// String describes the pool for logs, e.g. "pool.Pool(gen=3 health=healthy)",
// or "pool.Pool(gen=3 closed)".
func (p *Pool) String() string {
	if p.closed.Load() {
		return fmt.Sprintf("pool.Pool(gen=%d closed)", p.gen.Load())
	}
	return fmt.Sprintf("pool.Pool(gen=%d health=%s)", p.gen.Load(), Health(p.healthNow.Load()))
}
