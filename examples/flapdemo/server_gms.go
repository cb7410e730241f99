//go:build full

package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"

	sqle "github.com/dolthub/go-mysql-server"
	"github.com/dolthub/go-mysql-server/memory"
	"github.com/dolthub/go-mysql-server/server"
	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/go-sql-driver/mysql"
	"github.com/sirupsen/logrus"
)

const demoDB = "demo"

func init() { backends["mysql"] = startGMS }

// startGMS starts go-mysql-server for -server mysql; the runs use
// go-sql-driver/mysql, and flapguard's mysqladapter.
func startGMS() (*backend, error) {
	e, err := startEmbedded()
	if err != nil {
		return nil, err
	}
	return &backend{
		desc:   "embedded go-mysql-server " + e.addr,
		addr:   e.addr,
		driver: "mysql",
		dsn:    embeddedDSN,
		query:  "SELECT v FROM " + demoTable + " WHERE id = ?",
		args:   func() []any { return []any{rand.N(demoRows)} },
		close:  e.close,
	}, nil
}

// embedded is an in-memory MySQL-compatible server (go-mysql-server, pure
// Go) on a loopback port, with one table of demoRows rows.
type embedded struct {
	srv  *server.Server
	addr string
	done chan struct{}
}

func startEmbedded() (*embedded, error) {
	// go-mysql-server logs every connection at info level through logrus;
	// the demo's own output is the point.
	logrus.SetOutput(io.Discard)
	// go-sql-driver/mysql logs every broken connection to stderr; the
	// table reports them.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))

	db := memory.NewDatabase(demoDB)
	db.BaseDatabase.EnablePrimaryKeyIndexes()
	pro := memory.NewDBProvider(db)
	ctx := gms.NewContext(context.Background(), gms.WithSession(memory.NewSession(gms.NewBaseSession(), pro)))

	tbl := memory.NewTable(db, demoTable, gms.NewPrimaryKeySchema(gms.Schema{
		{Name: "id", Type: types.Int64, Nullable: false, Source: demoTable, PrimaryKey: true},
		{Name: "v", Type: types.Text, Nullable: false, Source: demoTable},
	}), db.GetForeignKeyCollection())
	db.AddTable(demoTable, tbl)
	for i := range demoRows {
		if err := tbl.Insert(ctx, gms.NewRow(int64(i), fmt.Sprintf("item-%d", i))); err != nil {
			return nil, fmt.Errorf("embedded server: insert: %w", err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	cfg := server.Config{Protocol: "tcp", Listener: ln}
	s, err := server.NewServer(cfg, sqle.NewDefault(pro), gms.NewContext, memory.NewSessionBuilder(pro), nil)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	e := &embedded{srv: s, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = s.Start() // returns when the listener is closed
	}()
	return e, nil
}

// dsn returns a go-sql-driver/mysql DSN for the server reached at addr (the
// proxy's address). No password: the embedded server accepts root.
func embeddedDSN(addr string) string {
	return "root@tcp(" + addr + ")/" + demoDB
}

// close stops accepting connections. Sessions end when their clients (the
// proxies) close them.
func (e *embedded) close() {
	_ = e.srv.Close()
	<-e.done
}
