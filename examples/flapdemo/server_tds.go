package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/flapguard/flapguard/internal/tdsserver"
)

const (
	demoTable = "items"
	demoRows  = 100
)

// startTDS starts flapguard's TDS test double (internal/tdsserver, which
// speaks SQL Server's wire protocol to the real go-mssqldb driver) on a
// loopback port, with demoRows ids in one table. SQL Server through a
// site-to-site tunnel is the case flapguard is for, and the double compiles
// in seconds, so the first `go run` stays short.
func startTDS() (*backend, error) {
	srv := tdsserver.New(tdsserver.Config{})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded TDS server: %w", err)
	}
	addr := srv.Addr().String()
	if err := fillTDS(tdsserver.DSNFor(addr)); err != nil {
		_ = srv.Close()
		return nil, err
	}
	return &backend{
		desc:   "embedded TDS test double " + addr + " (real go-mssqldb driver)",
		addr:   addr,
		driver: "sqlserver",
		dsn:    tdsserver.DSNFor,
		query:  "SELECT COUNT(*) FROM " + demoTable + " WHERE id = @p1",
		args:   func() []any { return []any{rand.N(demoRows)} },
		close:  func() { _ = srv.Close() },
	}, nil
}

func fillTDS(dsn string) error {
	db, err := sql.Open("sqlserver", dsn)
	if err != nil {
		return fmt.Errorf("embedded TDS server: %w", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var vals []string
	for i := range demoRows {
		vals = append(vals, fmt.Sprintf("(%d)", i))
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+demoTable+" (id) VALUES "+strings.Join(vals, ", ")); err != nil {
		return fmt.Errorf("embedded TDS server: fill %s: %w", demoTable, err)
	}
	return nil
}
