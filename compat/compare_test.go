package compat

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/flapguard/flapguard/pool"
)

// compareSides runs f on every side, each as a subtest, and fails unless
// all sides computed deeply equal results.
func compareSides[R any](t *testing.T, sides []*side, f func(t *testing.T, s *side) R) {
	t.Helper()
	names := make([]string, len(sides))
	for i, s := range sides {
		names[i] = s.name
	}
	compareRuns(t, names, func(t *testing.T, i int) R { return f(t, sides[i]) })
}

// compareRuns runs f once per name, each as a subtest, and fails unless all
// runs computed deeply equal results. A run that stopped early (t.Fatal)
// has failed the test by itself and is not compared; one that only
// reported errors is.
func compareRuns[R any](t *testing.T, names []string, f func(t *testing.T, i int) R) {
	t.Helper()
	results := make([]R, len(names))
	finished := make([]bool, len(names))
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			results[i] = f(t, i)
			finished[i] = true
		})
	}
	if !finished[0] {
		return
	}
	if testing.Verbose() {
		t.Logf("%s computed: %s", names[0], show(results[0]))
	}
	for i := 1; i < len(names); i++ {
		if finished[i] && !reflect.DeepEqual(results[0], results[i]) {
			t.Errorf("%s and %s differ:\n%s", names[0], names[i],
				diff(names[0], show(results[0]), names[i], show(results[i])))
		}
	}
}

func show(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

// diff shows both texts line by line, marking the lines that differ.
func diff(aName, a, bName, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x == y {
			fmt.Fprintf(&out, "    %s\n", x)
			continue
		}
		fmt.Fprintf(&out, "  - %s: %s\n  + %s: %s\n", aName, x, bName, y)
	}
	return out.String()
}

// errKind describes an error by what callers test it for, not by its
// message (which names the side's own tables): its outermost type (GORM's
// error translators use type assertions, so wrapping matters), the
// server's error code, and every sentinel it matches. Two errors of the
// same kind are handled the same by any caller.
//
// For a context's error the outermost type is left out: when a context
// ends while the driver reads, database/sql returns either ctx.Err() or
// the driver's error wrapping it, whichever of its goroutines notices
// first (seen with plain pgx too), and callers test it with errors.Is.
func errKind(err error) string {
	return kind(err, !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded))
}

// errClass is errKind without the outermost type, for steps where the
// driver itself returns one of several types by timing: pgx's Commit
// after a cancelled statement gives "conn closed" either bare
// (*pgconn.connLockError) or wrapped in "failed to deallocate cached
// statement(s)" (*fmt.wrapError), depending on how far its asynchronous
// close has got.
func errClass(err error) string { return kind(err, false) }

func kind(err error, withType bool) string {
	if err == nil {
		return "nil"
	}
	parts := []string{"error"}
	if withType {
		parts[0] = fmt.Sprintf("%T", err)
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		parts = append(parts, "SQLSTATE "+pg.Code)
	}
	var my *mysql.MySQLError
	if errors.As(err, &my) {
		parts = append(parts, fmt.Sprintf("mysql %d", my.Number))
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			parts = append(parts, s.name)
		}
	}
	// database/sql's errDBClosed is not exported.
	if err.Error() == "sql: database is closed" {
		parts = append(parts, "sql: database is closed")
	}
	return strings.Join(parts, ", ")
}

var sentinels = []struct {
	name string
	err  error
}{
	{"sql.ErrNoRows", sql.ErrNoRows},
	{"sql.ErrTxDone", sql.ErrTxDone},
	{"sql.ErrConnDone", sql.ErrConnDone},
	{"driver.ErrBadConn", driver.ErrBadConn},
	{"context.Canceled", context.Canceled},
	{"context.DeadlineExceeded", context.DeadlineExceeded},
	{"gorm.ErrRecordNotFound", gorm.ErrRecordNotFound},
	{"gorm.ErrDuplicatedKey", gorm.ErrDuplicatedKey},
	{"gorm.ErrForeignKeyViolated", gorm.ErrForeignKeyViolated},
	{"gorm.ErrInvalidTransaction", gorm.ErrInvalidTransaction},
	{"mysql.ErrInvalidConn", mysql.ErrInvalidConn},
	{"pool.ErrConnLost", pool.ErrConnLost},
	{"pool.ErrOutcomeUnknown", pool.ErrOutcomeUnknown},
	{"pool.ErrClosed", pool.ErrClosed},
	{"errRollback", errRollback},
}

// errRollback is returned by transaction bodies that must roll back.
var errRollback = errors.New("compat: roll back")

// wantErr records the kind of an error the scenario must produce: a step
// meant to fail that succeeds on both sides would compare equal and prove
// nothing.
func wantErr(t *testing.T, what string, err error) string {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, the scenario expects an error", what)
	}
	return errKind(err)
}

// must fails the scenario on an error in a step meant to succeed.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestErrKind checks that the comparison tells apart what a caller
// distinguishes, so that equal kinds mean equal handling.
func TestErrKind(t *testing.T) {
	dup := &pgconn.PgError{Code: "23505"}
	fk := &pgconn.PgError{Code: "23503"}
	distinct := []error{
		nil,
		dup,
		fk,
		fmt.Errorf("wrapped: %w", dup), // a type assertion no longer finds it
		&mysql.MySQLError{Number: 1062},
		&mysql.MySQLError{Number: 1064},
		sql.ErrNoRows,
		sql.ErrTxDone,
		context.Canceled,
		context.DeadlineExceeded,
		&pool.LostError{Err: context.Canceled},
		errors.New("sql: database is closed"),
	}
	seen := map[string]int{}
	for i, err := range distinct {
		k := errKind(err)
		if j, dup := seen[k]; dup {
			t.Errorf("errors %d (%v) and %d (%v) have the same kind %q", j, distinct[j], i, err, k)
		}
		seen[k] = i
	}
	same := [][2]error{
		{&pgconn.PgError{Code: "23505", Message: "on table a"}, &pgconn.PgError{Code: "23505", Message: "on table b"}},
		{context.Canceled, fmt.Errorf("timeout: %w", context.Canceled)},
	}
	for _, p := range same {
		if a, b := errKind(p[0]), errKind(p[1]); a != b {
			t.Errorf("%v and %v: %q != %q", p[0], p[1], a, b)
		}
	}
}
