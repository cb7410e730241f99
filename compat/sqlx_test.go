package compat

import (
	"database/sql"
	"fmt"
	"sort"
	"testing"

	"github.com/jmoiron/sqlx"
)

// item is the sqlx model; Note is NULL-able.
type item struct {
	ID    int64          `db:"id"`
	Name  string         `db:"name"`
	Qty   int            `db:"qty"`
	Price float64        `db:"price"`
	Note  sql.NullString `db:"note"`
}

const itemColumns = "id %PK, name VARCHAR(64) NOT NULL UNIQUE, qty INT NOT NULL, price DOUBLE PRECISION NOT NULL, note VARCHAR(64) NULL"

// sqlx opens sqlx over the side's *sql.DB, as an application would hand
// p.DB() to it, and creates the side's items table.
func (s *side) sqlx(t *testing.T) (*sqlx.DB, string) {
	t.Helper()
	return sqlx.NewDb(s.db, s.srv.driver), s.createTable(t, "items", itemColumns)
}

// execResult is what a caller can learn from a sql.Result.
type execResult struct {
	Rows       int64
	RowsErr    string
	LastID     int64
	LastIDErr  string
	ExecErr    string
	FromResult bool
}

func resultOf(res sql.Result, err error) execResult {
	r := execResult{ExecErr: errKind(err)}
	if res == nil {
		return r
	}
	r.FromResult = true
	var e error
	r.Rows, e = res.RowsAffected()
	r.RowsErr = errKind(e)
	r.LastID, e = res.LastInsertId()
	r.LastIDErr = errKind(e)
	return r
}

type sqlxResult struct {
	InsertOne     execResult
	InsertBatch   execResult
	InsertMap     execResult
	Duplicate     execResult
	UpdateNamed   execResult
	Selected      []item
	Got           item
	GotMissingErr string
	Count         int
	In            []string
	InArgs        []any
	InEmptyErr    string
	NamedQuery    []item
	MapScan       []string
	MissingDest   string
	Prepared      []int
	PreparedMiss  string
	NamedStmt     [][]string
	BadPrepare    string
}

// TestSqlx: sqlx over flapguard: NamedExec (struct, batch of structs, map,
// duplicate key), Select/Get (rows, missing row, scalar), In with Rebind
// (and an empty list), NamedQuery, MapScan (the driver's own value types
// come through), a missing destination, Preparex/PrepareNamed reused with
// several arguments, and a failing prepare. Results, affected counts,
// LastInsertId (and its error on PostgreSQL) and errors match plain.
func TestSqlx(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		compareSides(t, openSides(t, srv), func(t *testing.T, s *side) (r sqlxResult) {
			db, tbl := s.sqlx(t)
			ins := "INSERT INTO " + tbl + " (name, qty, price, note) VALUES (:name, :qty, :price, :note)"
			r.InsertOne = resultOf(db.NamedExec(ins, item{Name: "bolt", Qty: 10, Price: 0.25}))
			r.InsertBatch = resultOf(db.NamedExec(ins, []item{
				{Name: "nut", Qty: 100, Price: 0.05, Note: sql.NullString{String: "m4", Valid: true}},
				{Name: "gear", Qty: 3, Price: 12.5},
				{Name: "axle", Qty: 7, Price: 30},
			}))
			r.InsertMap = resultOf(db.NamedExec(ins, map[string]any{"name": "cog", "qty": 5, "price": 2.75, "note": "brass"}))
			r.Duplicate = resultOf(db.NamedExec(ins, item{Name: "nut", Qty: 1}))
			if r.Duplicate.ExecErr == "nil" {
				t.Error("duplicate insert succeeded")
			}
			r.UpdateNamed = resultOf(db.NamedExec("UPDATE "+tbl+" SET qty = qty + :add WHERE price < :max", map[string]any{"add": 1, "max": 5}))
			if r.InsertOne.ExecErr != "nil" || r.InsertBatch.ExecErr != "nil" || r.InsertMap.ExecErr != "nil" || r.UpdateNamed.ExecErr != "nil" {
				t.Fatalf("writes failed: %+v", r)
			}

			must(t, "select", db.Select(&r.Selected, "SELECT * FROM "+tbl+" ORDER BY id"))
			if len(r.Selected) == 0 {
				t.Fatal("select returned no rows")
			}
			must(t, "get", db.Get(&r.Got, db.Rebind("SELECT * FROM "+tbl+" WHERE name = ?"), "gear"))
			r.GotMissingErr = wantErr(t, "get missing", db.Get(&item{}, db.Rebind("SELECT * FROM "+tbl+" WHERE name = ?"), "none"))
			must(t, "count", db.Get(&r.Count, "SELECT count(*) FROM "+tbl))

			q, args, err := sqlx.In("SELECT name FROM "+tbl+" WHERE name IN (?) AND qty >= ? ORDER BY name", []string{"bolt", "gear", "cog", "none"}, 4)
			must(t, "in", err)
			r.InArgs = args
			must(t, "select in", db.Select(&r.In, db.Rebind(q), args...))
			_, _, err = sqlx.In("SELECT name FROM "+tbl+" WHERE name IN (?)", []string{})
			r.InEmptyErr = wantErr(t, "in empty", err)

			rows, err := db.NamedQuery("SELECT * FROM "+tbl+" WHERE qty BETWEEN :lo AND :hi ORDER BY id", map[string]any{"lo": 4, "hi": 11})
			must(t, "named query", err)
			for rows.Next() {
				var it item
				must(t, "struct scan", rows.StructScan(&it))
				r.NamedQuery = append(r.NamedQuery, it)
			}
			must(t, "named query rows", rows.Err())
			rows.Close()

			xr, err := db.Queryx("SELECT * FROM " + tbl + " WHERE name = 'nut'")
			must(t, "queryx", err)
			for xr.Next() {
				m := map[string]any{}
				must(t, "map scan", xr.MapScan(m))
				for k, v := range m {
					if b, ok := v.([]byte); ok {
						v = string(b)
					}
					r.MapScan = append(r.MapScan, fmt.Sprintf("%s %T %v", k, m[k], v))
				}
			}
			xr.Close()
			sort.Strings(r.MapScan)

			var partial []struct{ Name string }
			r.MissingDest = wantErr(t, "missing destination", db.Select(&partial, "SELECT name, qty FROM "+tbl))

			st, err := db.Preparex(db.Rebind("SELECT qty FROM " + tbl + " WHERE name = ?"))
			must(t, "preparex", err)
			for _, name := range []string{"bolt", "gear", "nut", "bolt"} {
				var qty int
				must(t, "prepared get", st.Get(&qty, name))
				r.Prepared = append(r.Prepared, qty)
			}
			r.PreparedMiss = wantErr(t, "prepared missing", st.Get(new(int), "none"))
			st.Close()

			ns, err := db.PrepareNamed("SELECT name FROM " + tbl + " WHERE price >= :min ORDER BY name")
			must(t, "prepare named", err)
			for _, minPrice := range []float64{0, 1, 20, 100} {
				var names []string
				must(t, "named select", ns.Select(&names, map[string]any{"min": minPrice}))
				r.NamedStmt = append(r.NamedStmt, names)
			}
			ns.Close()
			_, err = db.Preparex("SELECT FROM WHERE " + tbl)
			r.BadPrepare = wantErr(t, "bad prepare", err)
			return r
		})
	})
}

type sqlxTxResult struct {
	RolledBack    execResult
	InsideCount   int
	OutsideCount  int
	AfterRollback int
	Committed     execResult
	TxStmt        []int
	AfterCommit   int
	UseAfterErr   string
	CommitAgain   string
	ConflictErr   string
	AfterConflict []item
}

// TestSqlxTx: sqlx transactions roll back and commit the same through
// flapguard, a statement prepared inside one works, the finished
// transaction refuses further use, and a server error inside one leaves
// the same state.
func TestSqlxTx(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		compareSides(t, openSides(t, srv), func(t *testing.T, s *side) (r sqlxTxResult) {
			db, tbl := s.sqlx(t)
			ins := "INSERT INTO " + tbl + " (name, qty, price) VALUES (:name, :qty, :price)"
			count := func() int {
				t.Helper()
				var n int
				must(t, "count", db.Get(&n, "SELECT count(*) FROM "+tbl))
				return n
			}
			_, err := db.NamedExec(ins, item{Name: "seed", Qty: 1, Price: 1})
			must(t, "seed", err)

			tx, err := db.Beginx()
			must(t, "begin", err)
			r.RolledBack = resultOf(tx.NamedExec(ins, []item{{Name: "a", Qty: 1}, {Name: "b", Qty: 2}}))
			must(t, "count inside", tx.Get(&r.InsideCount, "SELECT count(*) FROM "+tbl))
			r.OutsideCount = count()
			must(t, "rollback", tx.Rollback())
			r.AfterRollback = count()

			tx, err = db.Beginx()
			must(t, "begin", err)
			r.Committed = resultOf(tx.NamedExec(ins, []item{{Name: "c", Qty: 3}, {Name: "d", Qty: 4}}))
			st, err := tx.Preparex(tx.Rebind("SELECT qty FROM " + tbl + " WHERE name = ?"))
			must(t, "tx preparex", err)
			for _, n := range []string{"c", "d", "seed"} {
				var q int
				must(t, "tx stmt get", st.Get(&q, n))
				r.TxStmt = append(r.TxStmt, q)
			}
			must(t, "commit", tx.Commit())
			r.AfterCommit = count()
			r.UseAfterErr = wantErr(t, "use after commit", tx.Get(new(int), "SELECT count(*) FROM "+tbl))
			r.CommitAgain = wantErr(t, "commit again", tx.Commit())

			tx, err = db.Beginx()
			must(t, "begin", err)
			_, err = tx.NamedExec("UPDATE "+tbl+" SET qty = 99 WHERE name = :name", map[string]any{"name": "c"})
			must(t, "update in tx", err)
			_, err = tx.NamedExec(ins, item{Name: "seed"})
			r.ConflictErr = wantErr(t, "duplicate in tx", err)
			must(t, "rollback after error", tx.Rollback())
			must(t, "select after", db.Select(&r.AfterConflict, "SELECT * FROM "+tbl+" ORDER BY id"))
			return r
		})
	})
}
