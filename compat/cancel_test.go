package compat

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
)

// sleepSecs is how long the cancelled queries would run: far longer than
// any wait in these tests, so a query that returns was cancelled.
const sleepSecs = 30

// cancelWhileRunning runs a query with a context that is cancelled once
// the server shows the query running, and returns the kind of error it
// returned.
func cancelWhileRunning(t *testing.T, s *side, what string, run func(ctx context.Context, query string) error) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return runAndCancel(t, s, what, cancel, func(q string) error { return run(ctx, q) })
}

// runAndCancel runs a sleeping query, calls cancel once the server shows
// it running, and returns the kind of error the query returned. It fails if
// the query does not return promptly: the cancellation did not reach it.
func runAndCancel(t *testing.T, s *side, what string, cancel func(), run func(query string) error) string {
	t.Helper()
	tag := newTag("cancel")
	s.killLater(t, tag)
	errc := make(chan error, 1)
	go func() { errc <- run(s.srv.sleep(sleepSecs, tag)) }()
	s.waitRunning(t, tag, errc)
	cancel()
	select {
	case err := <-errc:
		return wantErr(t, what, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still running 10s after its context was cancelled", what)
		return ""
	}
}

// stillWorks is what the next callers see after a cancellation: several
// concurrent queries (so that more than one pooled connection is used,
// including the one whose query was cancelled), and nothing left in use.
type stillWorks struct {
	Values []int64
	Errs   []string
	InUse  int
}

func afterCancel(t *testing.T, db *sql.DB, query func(ctx context.Context, n int) (int64, error)) stillWorks {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 4
	r := stillWorks{Values: make([]int64, n), Errs: make([]string, n)}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			v, err := query(ctx, i)
			r.Values[i], r.Errs[i] = v, errKind(err)
		})
	}
	wg.Wait()
	for i, e := range r.Errs {
		if e != "nil" {
			t.Errorf("query %d after the cancellation: %s", i, e)
		}
	}
	r.InUse = db.Stats().InUse
	return r
}

func sqlAfterCancel(t *testing.T, db *sql.DB) stillWorks {
	return afterCancel(t, db, func(ctx context.Context, i int) (v int64, err error) {
		err = db.QueryRowContext(ctx, "SELECT 40 + "+string(rune('0'+i))).Scan(&v)
		return v, err
	})
}

type cancelResult struct {
	Query           string
	QueryAfter      stillWorks
	Deadline        string
	DeadlineAfter   stillWorks
	AlreadyDone     string
	StmtInTx        string
	StmtInTxCommit  string
	StmtInTxRows    int
	StmtInTxAfter   stillWorks
	TxCtx           string
	TxCommitAborted bool
	TxCommitErr     string
	TxRows          int
	TxAfter         stillWorks
	Prepared        string
	PreparedAfter   stillWorks
}

// TestCancel: database/sql calls whose context is cancelled while the
// server runs them (a query, a deadline, a statement in a transaction, a
// transaction's own context, a prepared statement), or before they start,
// return the same kind of error through flapguard as through plain
// database/sql; the transaction commits or not alike, and the pool serves
// every following query.
func TestCancel(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		compareSides(t, openSides(t, srv), func(t *testing.T, s *side) (r cancelResult) {
			db := s.db
			r.Query = cancelWhileRunning(t, s, "query", func(ctx context.Context, q string) error {
				return db.QueryRowContext(ctx, q).Scan(new(int64))
			})
			r.QueryAfter = sqlAfterCancel(t, db)

			tag := newTag("deadline")
			s.killLater(t, tag)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			r.Deadline = wantErr(t, "deadline", db.QueryRowContext(ctx, s.srv.sleep(sleepSecs, tag)).Scan(new(int64)))
			cancel()
			r.DeadlineAfter = sqlAfterCancel(t, db)

			ctx, cancel = context.WithCancel(context.Background())
			cancel()
			r.AlreadyDone = wantErr(t, "cancelled before", db.QueryRowContext(ctx, "SELECT 1").Scan(new(int64)))

			// A statement cancelled inside a live transaction: what the
			// transaction's Commit says afterwards is the driver's.
			tbl := s.createTable(t, "events", "id %PK, v INT NOT NULL")
			tx, err := db.Begin()
			must(t, "begin", err)
			_, err = tx.Exec("INSERT INTO " + tbl + " (v) VALUES (1), (2)")
			must(t, "insert in tx", err)
			r.StmtInTx = cancelWhileRunning(t, s, "statement in tx", func(ctx context.Context, q string) error {
				_, err := tx.ExecContext(ctx, q)
				return err
			})
			r.StmtInTxCommit = errClass(tx.Commit())
			must(t, "count", db.QueryRow("SELECT count(*) FROM "+tbl).Scan(&r.StmtInTxRows))
			r.StmtInTxAfter = sqlAfterCancel(t, db)

			// The transaction's own context cancelled.
			tbl2 := s.createTable(t, "events2", "id %PK, v INT NOT NULL")
			ctx, cancel = context.WithCancel(context.Background())
			defer cancel()
			tx, err = db.BeginTx(ctx, nil)
			must(t, "begin", err)
			_, err = tx.ExecContext(ctx, "INSERT INTO "+tbl2+" (v) VALUES (1), (2)")
			must(t, "insert in tx", err)
			r.TxCtx = runAndCancel(t, s, "transaction context", cancel, func(q string) error {
				_, err := tx.ExecContext(ctx, q)
				return err
			})
			err = tx.Commit()
			// database/sql rolls back a transaction whose context ended,
			// on its own goroutine: Commit reports ctx.Err() before that
			// rollback is done and sql.ErrTxDone after.
			r.TxCommitAborted = errors.Is(err, context.Canceled) || errors.Is(err, sql.ErrTxDone)
			if !r.TxCommitAborted {
				r.TxCommitErr = errKind(err)
			}
			must(t, "count", db.QueryRow("SELECT count(*) FROM "+tbl2).Scan(&r.TxRows))
			r.TxAfter = sqlAfterCancel(t, db)

			r.Prepared = cancelWhileRunning(t, s, "prepared statement", func(ctx context.Context, q string) error {
				st, err := db.PrepareContext(ctx, q)
				if err != nil {
					return err
				}
				defer st.Close()
				return st.QueryRowContext(ctx).Scan(new(int64))
			})
			r.PreparedAfter = sqlAfterCancel(t, db)
			return r
		})
	})
}

type cancelORMResult struct {
	GormQuery    string
	GormAfter    stillWorks
	GormTx       string
	GormTxUsers  int64
	GormTxAfter  stillWorks
	SqlxGet      string
	SqlxExec     string
	SqlxAfter    stillWorks
	SqlxTx       string
	SqlxTxCommit string
	SqlxTxAfter  stillWorks
}

// TestCancelORM: the same through GORM (WithContext on a query and on a
// Transaction) and sqlx (GetContext, ExecContext, a transaction begun with
// BeginTxx): the cancelled call's error, what the transaction leaves
// behind, and the queries after it.
func TestCancelORM(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		compareSides(t, openSides(t, srv), func(t *testing.T, s *side) (r cancelORMResult) {
			gdb := s.gorm(t)
			migrate(t, s, gdb)
			gormAfter := func() stillWorks {
				return afterCancel(t, s.db, func(ctx context.Context, i int) (v int64, err error) {
					err = gdb.WithContext(ctx).Raw("SELECT 40 + ?", i).Scan(&v).Error
					return v, err
				})
			}
			r.GormQuery = cancelWhileRunning(t, s, "gorm query", func(ctx context.Context, q string) error {
				var n int64
				return gdb.WithContext(ctx).Raw(q).Scan(&n).Error
			})
			r.GormAfter = gormAfter()
			r.GormTx = cancelWhileRunning(t, s, "gorm transaction", func(ctx context.Context, q string) error {
				return gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
					if err := tx.Create(&User{Name: "cancelled", Email: "cancelled@example.com"}).Error; err != nil {
						return err
					}
					return tx.Exec(q).Error
				})
			})
			must(t, "count", gdb.Model(&User{}).Count(&r.GormTxUsers).Error)
			r.GormTxAfter = gormAfter()

			db, _ := s.sqlx(t)
			sqlxAfter := func() stillWorks {
				return afterCancel(t, s.db, func(ctx context.Context, i int) (v int64, err error) {
					err = db.GetContext(ctx, &v, db.Rebind("SELECT 40 + ?"), i)
					return v, err
				})
			}
			r.SqlxGet = cancelWhileRunning(t, s, "sqlx get", func(ctx context.Context, q string) error {
				var n int64
				return db.GetContext(ctx, &n, q)
			})
			r.SqlxExec = cancelWhileRunning(t, s, "sqlx exec", func(ctx context.Context, q string) error {
				_, err := db.ExecContext(ctx, q)
				return err
			})
			r.SqlxAfter = sqlxAfter()
			tx, err := db.BeginTxx(context.Background(), nil)
			must(t, "beginx", err)
			r.SqlxTx = cancelWhileRunning(t, s, "sqlx statement in tx", func(ctx context.Context, q string) error {
				var n int64
				return tx.GetContext(ctx, &n, q)
			})
			r.SqlxTxCommit = errClass(tx.Commit())
			r.SqlxTxAfter = sqlxAfter()
			return r
		})
	})
}
