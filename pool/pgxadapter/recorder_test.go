package pgxadapter

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The recorder keeps what pgx's statement cache prepared (nothing else),
// at most keepMax statements, the most used first; a new statement pushes
// out the least used, and counts decay so old favourites give way.
func TestRecorderKeepsTheMostUsedCacheStatements(t *testing.T) {
	r := &recorder{}
	ctx := context.Background()
	prep := func(name, sql string) { r.TracePrepareStart(ctx, nil, pgx.TracePrepareStartData{Name: name, SQL: sql}) }
	for range 5 {
		prep(cacheName+"a", "SELECT a")
	}
	for range 3 {
		prep(cacheName+"b", "SELECT b")
	}
	prep("pgx_0", "SELECT explicit")                                   // database/sql's Prepare: not the cache's
	prep(cacheName+"big", "SELECT '"+strings.Repeat("x", keepSQL)+"'") // too long to keep
	for i := range keepMax + 10 {
		prep(cacheName+fmt.Sprint(i), fmt.Sprintf("SELECT %d", i))
	}
	if n := len(r.seen); n != keepMax {
		t.Fatalf("%d statements kept; want keepMax %d", n, keepMax)
	}
	hot := r.hot(3)
	if hot[0].sql != "SELECT a" || hot[0].name != cacheName+"a" || hot[1].sql != "SELECT b" {
		t.Fatalf("hot: %+v; want SELECT a, then SELECT b", hot)
	}
	if hot[2].sql != fmt.Sprintf("SELECT %d", keepMax+9) {
		t.Fatalf("third: %q; want the most recent of the statements used once", hot[2].sql)
	}
	for _, s := range r.hot(keepMax) {
		if s.sql == "SELECT explicit" || strings.HasPrefix(s.sql, "SELECT 'x") {
			t.Fatalf("kept %.20q", s.sql)
		}
	}
	// 2000 more prepares of one new statement: the old counts halve twice
	// (5 → 1) and it leads.
	for range 2000 {
		prep(cacheName+"c", "SELECT c")
	}
	if hot := r.hot(2); hot[0].sql != "SELECT c" || hot[1].uses > 2 {
		t.Fatalf("after decay: %+v", hot)
	}
	r.forget("SELECT c")
	if hot := r.hot(1); hot[0].sql == "SELECT c" {
		t.Fatal("forget kept the statement")
	}
}
