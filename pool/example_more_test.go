package pool_test

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/flapguard/flapguard/pool"
)

// Stats is sql.DBStats plus what the pool did about the path: here one
// connection made, one Reset, and the next query on a new driver
// connection (a pooled connection renewed at borrow).
func ExamplePool_Stats() {
	p := pool.OpenDB(&memConnector{}, pool.Config{ProbeInterval: -1})
	defer p.Close()
	db := p.DB()

	connID(db)
	p.Reset("planned failover")
	connID(db)
	s := p.Stats()
	fmt.Println("generation:", s.Generation, "health:", s.Health)
	fmt.Println("resets:", s.Resets, "severs:", s.Severs, "connects:", s.Connects)
	fmt.Println("open:", s.OpenConnections, "idle:", s.Idle, "in use:", s.InUse)
	// Output:
	// generation: 2 health: healthy
	// resets: 1 severs: 0 connects: 2
	// open: 1 idle: 1 in use: 0
}

// RunConn runs a unit of work on a connection of its own. A connection lost
// while a statement was in flight is retried only when the work says it is
// idempotent; otherwise the error matches ErrOutcomeUnknown, because the
// server may have run it.
func ExamplePool_RunConn() {
	mem := &memConnector{}
	p := pool.OpenDB(mem, pool.Config{ProbeInterval: -1})
	defer p.Close()
	ctx := context.Background()

	upsert := func(attempts *int) func(ctx context.Context, c *sql.Conn) error {
		return func(ctx context.Context, c *sql.Conn) error {
			*attempts++
			_, err := c.ExecContext(ctx, "UPDATE sessions SET seen = now() WHERE id = 'c0ffee'")
			return err
		}
	}

	mem.failNext(&mem.execErrs, io.ErrUnexpectedEOF) // the connection dies mid-statement
	n := 0
	err := p.RunConn(ctx, pool.RetryPolicy{}, upsert(&n))
	fmt.Println("not idempotent:", n, "attempt, outcome unknown =", errors.Is(err, pool.ErrOutcomeUnknown))

	mem.failNext(&mem.execErrs, io.ErrUnexpectedEOF)
	n = 0
	err = p.RunConn(ctx, pool.RetryPolicy{Idempotent: true}, upsert(&n))
	fmt.Println("idempotent:", n, "attempts, err =", err)
	// Output:
	// not idempotent: 1 attempt, outcome unknown = true
	// idempotent: 2 attempts, err = <nil>
}

// Sever closes the sockets of every old connection, so a request hung on a
// dead flow returns now instead of at its deadline. Here the "server"
// takes the query and never answers, as a blackholed tunnel would; the
// pool has socket control because the driver dials through the pool's
// DialFunc (OpenWithDialer; the adapters do the same for go-mssqldb, pgx
// and go-sql-driver/mysql).
func ExamplePool_Sever() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	received := make(chan string, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				received <- strings.TrimSpace(line)
				_, _ = io.Copy(io.Discard, c) // never answers
			}()
		}
	}()

	p, err := pool.OpenWithDialer(func(dial pool.DialFunc) (driver.Connector, error) {
		return &lineConnector{addr: ln.Addr().String(), dial: dial}, nil
	}, pool.Config{ProbeInterval: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	done := make(chan error, 1)
	go func() {
		var s string
		done <- p.DB().QueryRow("SELECT 1").Scan(&s) // no deadline: it would hang
	}()
	fmt.Println("server got:", <-received)
	p.Sever("the path is known dead")
	err = <-done
	fmt.Println("the query returned; outcome unknown =", errors.Is(err, pool.ErrOutcomeUnknown))
	fmt.Println("socket control:", p.Stats().SocketControl, "severs:", p.Stats().Severs)
	// Output:
	// server got: SELECT 1
	// the query returned; outcome unknown = true
	// socket control: true severs: 1
}

// lineConnector is a toy driver for ExamplePool_Sever: one query per line,
// one answer per line, over a socket it dials through the pool's DialFunc.
type lineConnector struct {
	addr string
	dial pool.DialFunc
}

func (l *lineConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := l.dial(ctx, "tcp", l.addr)
	if err != nil {
		return nil, err
	}
	return &lineConn{c: c, r: bufio.NewReader(c)}, nil
}

func (l *lineConnector) Driver() driver.Driver { return lineDriver{l} }

type lineDriver struct{ l *lineConnector }

func (d lineDriver) Open(string) (driver.Conn, error) { return d.l.Connect(context.Background()) }

type lineConn struct {
	c net.Conn
	r *bufio.Reader
}

func (c *lineConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("line: no prepare") }
func (c *lineConn) Close() error                        { return c.c.Close() }
func (c *lineConn) Begin() (driver.Tx, error)           { return nil, errors.New("line: no transactions") }

func (c *lineConn) QueryContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	if _, err := io.WriteString(c.c, q+"\n"); err != nil {
		return nil, err
	}
	answer, err := c.r.ReadString('\n') // like many drivers, blind to ctx while reading
	if err != nil {
		return nil, err
	}
	return &lineRows{v: strings.TrimSpace(answer)}, nil
}

type lineRows struct {
	v    string
	done bool
}

func (r *lineRows) Columns() []string { return []string{"v"} }
func (r *lineRows) Close() error      { return nil }
func (r *lineRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = r.v
	return nil
}
