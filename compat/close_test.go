package compat

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gorm.io/gorm"
)

// These tests close only the *sql.DB, the way code that was handed p.DB()
// does (GORM's sqlDB.Close(), sqlx's db.Close()), never the Pool. After
// it, every goroutine started since the side was opened must end (the
// pool's prober and event loop included), and the DB must refuse new work
// with database/sql's own error. The tests do not run in parallel, so the
// goroutines they count are their own.

var sideNames = []string{"plain", "flapguard"}

// openForClose opens side i on srv after taking the goroutine baseline.
// The side is closed at the end as its owner would (Pool.Close for
// flapguard, which is idempotent), so that a failing test does not leave
// the pool's goroutines running into the next one.
func openForClose(t *testing.T, srv *server, i int) (*side, goleak.Option) {
	t.Helper()
	admin := srv.admin(t)
	// The admin connection is made before the baseline and reused after it
	// (go-sql-driver/mysql runs a goroutine per connection).
	must(t, "admin ping", admin.Ping())
	base := goleak.IgnoreCurrent()
	s := openSide(t, srv, admin, sideNames[i] == "flapguard")
	t.Cleanup(s.close)
	return s, base
}

// busy holds n connections of db at once (n transactions waiting for each
// other), so that closing finds several connections open, idle or not.
func busy(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	var started, release sync.WaitGroup
	started.Add(n)
	release.Add(1)
	errs := make(chan error, n)
	var done sync.WaitGroup
	for range n {
		done.Go(func() {
			tx, err := db.Begin()
			started.Done()
			if err != nil {
				errs <- err
				return
			}
			release.Wait()
			var one int
			if err := tx.QueryRow("SELECT 1").Scan(&one); err != nil {
				errs <- err
			}
			errs <- tx.Commit()
		})
	}
	started.Wait()
	release.Done()
	done.Wait()
	close(errs)
	for err := range errs {
		must(t, "busy", err)
	}
}

// noLeak reports whether the goroutines are back to the baseline (goleak
// retries while they wind down), and logs the ones still running.
func noLeak(t *testing.T, base goleak.Option, more ...goleak.Option) bool {
	t.Helper()
	if err := goleak.Find(append(more, base)...); err != nil {
		t.Errorf("goroutines left running after db.Close():\n%v", err)
		return false
	}
	return true
}

type closeResult struct {
	OpenBefore  int
	CloseErr    string
	CloseAgain  string
	OpenAfter   int
	BackToBase  bool
	AfterQuery  string
	AfterWrite  string
	AfterTx     string
	AfterPing   string
	AfterPrep   string
	AfterConnDB string
}

// TestCloseGorm: GORM's sqlDB.Close() on a DB that has served queries,
// prepared statements (PrepareStmt) and concurrent transactions.
func TestCloseGorm(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		compareRuns(t, sideNames, func(t *testing.T, i int) (r closeResult) {
			s, base := openForClose(t, srv, i)
			gdb := s.gorm(t)
			migrate(t, s, gdb)
			users := seedUsers()
			must(t, "create", gdb.Create(&users).Error)
			pdb := gdb.Session(&gorm.Session{PrepareStmt: true})
			must(t, "prepared first", pdb.First(&User{}, users[1].ID).Error)
			busy(t, s.db, 4)
			r.OpenBefore = s.db.Stats().OpenConnections

			sqlDB, err := gdb.DB()
			must(t, "gdb.DB", err)
			r.CloseErr = errKind(sqlDB.Close())
			r.CloseAgain = errKind(sqlDB.Close())
			r.OpenAfter = sqlDB.Stats().OpenConnections
			// GORM's PrepareStmt cache runs an expiry goroutine that nothing
			// stops (gorm.io/gorm@v1.31.2/internal/lru/lru.go:76-79: "done
			// channel is never closed"), with plain database/sql too.
			r.BackToBase = noLeak(t, base, goleak.IgnoreTopFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1"))

			r.AfterQuery = wantErr(t, "first after close", gdb.First(&User{}).Error)
			r.AfterWrite = wantErr(t, "create after close", gdb.Create(&User{Name: "late", Email: "late@example.com"}).Error)
			r.AfterTx = wantErr(t, "transaction after close", gdb.Transaction(func(tx *gorm.DB) error { return nil }))
			r.AfterPing = wantErr(t, "ping after close", sqlDB.Ping())
			r.AfterPrep = wantErr(t, "prepared after close", pdb.First(&User{}, users[0].ID).Error)
			_, err = sqlDB.Conn(context.Background())
			r.AfterConnDB = wantErr(t, "conn after close", err)
			return r
		})
	})
}

// TestCloseSqlx: sqlx's db.Close() on a DB that has served named
// statements, a prepared statement and concurrent transactions.
func TestCloseSqlx(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		compareRuns(t, sideNames, func(t *testing.T, i int) (r closeResult) {
			s, base := openForClose(t, srv, i)
			db, tbl := s.sqlx(t)
			_, err := db.NamedExec("INSERT INTO "+tbl+" (name, qty, price) VALUES (:name, :qty, :price)",
				[]item{{Name: "a", Qty: 1, Price: 1}, {Name: "b", Qty: 2, Price: 2}})
			must(t, "named exec", err)
			st, err := db.Preparex(db.Rebind("SELECT qty FROM " + tbl + " WHERE name = ?"))
			must(t, "preparex", err)
			must(t, "prepared get", st.Get(new(int), "a"))
			busy(t, db.DB, 4)
			r.OpenBefore = db.Stats().OpenConnections

			r.CloseErr = errKind(db.Close())
			r.CloseAgain = errKind(db.Close())
			r.OpenAfter = db.Stats().OpenConnections
			r.BackToBase = noLeak(t, base)

			var items []item
			r.AfterQuery = wantErr(t, "select after close", db.Select(&items, "SELECT * FROM "+tbl))
			_, err = db.NamedExec("INSERT INTO "+tbl+" (name, qty, price) VALUES (:name, :qty, :price)", item{Name: "c"})
			r.AfterWrite = wantErr(t, "named exec after close", err)
			_, err = db.Beginx()
			r.AfterTx = wantErr(t, "beginx after close", err)
			r.AfterPing = wantErr(t, "ping after close", db.Ping())
			r.AfterPrep = wantErr(t, "prepared after close", st.Get(new(int), "a"))
			_, err = db.Connx(context.Background())
			r.AfterConnDB = wantErr(t, "conn after close", err)
			st.Close()
			return r
		})
	})
}

type closeInUseResult struct {
	CloseErr       string
	InFlight       int64
	InFlightErr    string
	ConnQuery      int64
	ConnQueryErr   string
	TxCommitErr    string
	ConnCloseErr   string
	Committed      int
	OpenAfter      int
	BackToBase     bool
	AfterQueryKind string
}

// TestCloseInUse: db.Close() while a query runs on the server, a sql.Conn
// is held and a transaction is open. database/sql lets work already
// handed out finish (the in-flight query returns its result, the held
// conn answers, the transaction commits) and closes each connection when
// it is released; through flapguard the same, and then nothing is left.
func TestCloseInUse(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		compareRuns(t, sideNames, func(t *testing.T, i int) (r closeInUseResult) {
			s, base := openForClose(t, srv, i)
			tbl := s.createTable(t, "events", "id %PK, v INT NOT NULL")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			conn, err := s.db.Conn(ctx)
			must(t, "conn", err)
			tx, err := s.db.BeginTx(ctx, nil)
			must(t, "begin", err)
			_, err = tx.ExecContext(ctx, "INSERT INTO "+tbl+" (v) VALUES (1), (2), (3)")
			must(t, "insert", err)

			tag := newTag("inflight")
			s.killLater(t, tag)
			var inflight int64
			errc := make(chan error, 1)
			go func() { errc <- s.db.QueryRowContext(ctx, s.srv.sleep(1, tag)).Scan(&inflight) }()
			s.waitRunning(t, tag, errc)

			r.CloseErr = errKind(s.db.Close())

			r.InFlightErr = errKind(<-errc)
			r.InFlight = inflight
			r.ConnQueryErr = errKind(conn.QueryRowContext(ctx, "SELECT 40 + 2").Scan(&r.ConnQuery))
			r.TxCommitErr = errKind(tx.Commit())
			r.ConnCloseErr = errKind(conn.Close())
			r.OpenAfter = s.db.Stats().OpenConnections
			r.BackToBase = noLeak(t, base)
			must(t, "count", s.admin.QueryRowContext(ctx, "SELECT count(*) FROM "+tbl).Scan(&r.Committed))
			r.AfterQueryKind = wantErr(t, "query after close", s.db.QueryRowContext(ctx, "SELECT 1").Scan(new(int)))
			return r
		})
	})
}
