package pool_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mssqladapter"
)

// memConnector is a tiny in-memory driver for the examples. Each connection
// it makes has a serial number, which "SELECT id" returns, so an example
// can show when the pool replaced a driver connection. Errors queued in
// execErrs and commitErrs are returned, in order, by the next Exec and
// Commit calls: a stand-in for a connection that dies mid-statement.
type memConnector struct {
	mu         sync.Mutex // protects following
	made       int
	execErrs   []error
	commitErrs []error
}

var _ driver.Connector = (*memConnector)(nil)

func (m *memConnector) Connect(context.Context) (driver.Conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.made++
	return &memConn{m: m, id: int64(m.made)}, nil
}

func (m *memConnector) Driver() driver.Driver { return memDriver{m} }

// failNext queues errs for the next Exec (exec) or Commit calls.
func (m *memConnector) failNext(q *[]error, errs ...error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	*q = append(*q, errs...)
}

func (m *memConnector) pop(q *[]error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(*q) == 0 {
		return nil
	}
	err := (*q)[0]
	*q = (*q)[1:]
	return err
}

type memDriver struct{ m *memConnector }

func (d memDriver) Open(string) (driver.Conn, error) { return d.m.Connect(context.Background()) }

type memConn struct {
	m  *memConnector
	id int64
}

func (c *memConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("mem: no prepare") }
func (c *memConn) Close() error                        { return nil }
func (c *memConn) Begin() (driver.Tx, error)           { return memTx{c.m}, nil }
func (c *memConn) Ping(context.Context) error          { return nil }

func (c *memConn) QueryContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	if q != "SELECT id" {
		return nil, fmt.Errorf("mem: unknown query %q", q)
	}
	return &memRows{id: c.id}, nil
}

func (c *memConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	if err := c.m.pop(&c.m.execErrs); err != nil {
		return nil, err
	}
	return driver.RowsAffected(1), nil
}

type memTx struct{ m *memConnector }

func (t memTx) Commit() error   { return t.m.pop(&t.m.commitErrs) }
func (t memTx) Rollback() error { return nil }

type memRows struct {
	id   int64
	done bool
}

func (r *memRows) Columns() []string { return []string{"id"} }
func (r *memRows) Close() error      { return nil }
func (r *memRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = r.id
	return nil
}

func connID(db *sql.DB) string {
	var id int64
	if err := db.QueryRow("SELECT id").Scan(&id); err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("driver conn #%d", id)
}

// OpenDB wraps any driver.Connector. Without access to the driver's sockets
// the pool offers generation reset, liveness at borrow, classification and
// the tunnel gate, but no sever (Stats().SocketControl is false); Open with
// a registered driver, or OpenWithDialer, gives full control.
func ExampleOpenDB() {
	p := pool.OpenDB(&memConnector{}, pool.Config{})
	defer p.Close()

	// p.DB() is an ordinary *sql.DB: hand it to existing code.
	db := p.DB()
	var id int64
	if err := db.QueryRow("SELECT id").Scan(&id); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("id:", id)
	fmt.Println("socket control:", p.Stats().SocketControl)
	// Output:
	// id: 1
	// socket control: false
}

// Open is sql.Open with flapguard underneath. It does not connect (Ping
// does); an unknown name says which adapter import is missing, and lib/pq's
// "postgres" points to the pgx adapter.
func ExampleOpen() {
	p, err := pool.Open("sqlserver", "sqlserver://app:s3cret@db.example:1433?database=app", pool.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	fmt.Println("sqlserver socket control:", p.Stats().SocketControl)

	_, err = pool.Open("postgres", "postgres://app@db.example/app", pool.Config{})
	fmt.Println(err)

	_, err = pool.Open("sqlserver", "sqlserver://db.example", pool.Config{ResetCooldown: -time.Second})
	fmt.Println(err)
	// Output:
	// sqlserver socket control: true
	// pool: unknown driver "postgres": flapguard reaches PostgreSQL through pgx: open with driver name "pgx" and add import _ "github.com/flapguard/flapguard/pool/pgxadapter" (pgx reads the same URL and key=value DSNs as lib/pq)
	// pool: Config.ResetCooldown is negative (-1s); use 0 for the default 1s
}

// Reset starts a new generation: the idle connection is closed, and the
// next query, which database/sql hands the same pooled connection, gets a
// new driver connection before anything is sent. No query fails because
// of a Reset.
func ExamplePool_Reset() {
	p := pool.OpenDB(&memConnector{}, pool.Config{})
	defer p.Close()
	db := p.DB()

	fmt.Println("generation", p.Stats().Generation, "-", connID(db))
	p.Reset("planned failover")
	fmt.Println("generation", p.Stats().Generation, "-", connID(db))
	fmt.Println("resets:", p.Stats().Resets)
	// Output:
	// generation 1 - driver conn #1
	// generation 2 - driver conn #2
	// resets: 1
}

// Notify never blocks; NotifyWait waits for the verdict of the check the
// event started. Only a path the check finds dead shuts the gate (then a
// request that needs a connection waits up to DownWait, and fails with
// ErrTunnelDown).
func ExamplePool_Notify() {
	p := pool.OpenDB(&memConnector{}, pool.Config{DownWait: -1, ProbeInterval: -1})
	defer p.Close()
	db := p.DB()
	before := connID(db)
	fmt.Println("before:", before)

	// A DOWN is a hint: the pool checks the path before it acts, and this
	// in-memory "server" answers, so nothing is cut (a wrong monitor, a
	// replayed or forged event costs a check).
	v, err := p.NotifyWait(context.Background(), detect.Event{Tunnel: "aws-1", State: detect.Down, Source: "example"})
	s := p.Stats()
	fmt.Println("verdict:", err, v.Taken, v.Checked, v.PathOK)
	fmt.Println("gate shut:", s.TunnelDown, "resets:", s.Resets, "same conn:", connID(db) == before)
	// Output:
	// before: driver conn #1
	// verdict: <nil> true true true
	// gate shut: false resets: 0 same conn: true
}

// RunTx retries a transaction whose connection was lost before COMMIT (it
// cannot have been committed), but not one lost while COMMIT was in flight:
// the server may have committed it, so running it again could move the
// money twice. That error matches ErrOutcomeUnknown.
func ExamplePool_RunTx() {
	mem := &memConnector{}
	p := pool.OpenDB(mem, pool.Config{})
	defer p.Close()
	ctx := context.Background()

	transfer := func(attempts *int) func(ctx context.Context, tx *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			*attempts++
			if _, err := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance - 10 WHERE id = 1"); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance + 10 WHERE id = 2")
			return err
		}
	}

	// The connection dies during the first UPDATE: retried on a new one.
	mem.failNext(&mem.execErrs, io.ErrUnexpectedEOF)
	n := 0
	err := p.RunTx(ctx, pool.RetryPolicy{}, nil, transfer(&n))
	fmt.Println("lost before COMMIT:", n, "attempts, err =", err)

	// The connection dies while COMMIT is in flight: not retried.
	mem.failNext(&mem.commitErrs, io.ErrUnexpectedEOF)
	n = 0
	err = p.RunTx(ctx, pool.RetryPolicy{}, nil, transfer(&n))
	fmt.Println("lost during COMMIT:", n, "attempt, outcome unknown =", errors.Is(err, pool.ErrOutcomeUnknown))
	// Output:
	// lost before COMMIT: 2 attempts, err = <nil>
	// lost during COMMIT: 1 attempt, outcome unknown = true
}

// A LostError says whether a lost connection may have run the statement.
// Match it with errors.Is, through any wrapping; the driver's own error
// stays reachable.
func ExampleLostError() {
	inFlight := fmt.Errorf("debit account 1: %w", &pool.LostError{Err: io.ErrUnexpectedEOF})
	fmt.Println(errors.Is(inFlight, pool.ErrConnLost), errors.Is(inFlight, pool.ErrOutcomeUnknown), errors.Is(inFlight, io.ErrUnexpectedEOF))

	unsent := &pool.LostError{Err: driver.ErrBadConn, Unsent: true}
	fmt.Println(errors.Is(unsent, pool.ErrConnLost), errors.Is(unsent, pool.ErrOutcomeUnknown), errors.Is(unsent, driver.ErrBadConn))

	var le *pool.LostError
	if errors.As(inFlight, &le) {
		fmt.Println("unsent:", le.Unsent, "- driver said:", le.Err)
	}
	// Output:
	// true true true
	// true false true
	// unsent: false - driver said: unexpected EOF
}
