package tdsserver

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Result is what a statement returns to the client.
type Result struct {
	// Columns names the result set's columns; nil means the statement has
	// no result set.
	Columns []string
	// Rows holds the result set. Values may be nil, bool, int16, int32, int,
	// int64, float64, string (at most 4000 UTF-16 units) or []byte (at most
	// 8000 bytes); a column's SQL type follows its first non-nil value.
	Rows [][]any
	// RowsAffected is reported in DONE for a statement without a result set
	// (sql.Result.RowsAffected); negative means "no count", as for WAITFOR.
	// A result set always reports len(Rows).
	RowsAffected int64

	cmd uint16 // DONE CurCmd
}

// Handler lets a test add statements. It is called first for every request,
// from the session's goroutine, with the SQL text (or the procedure name of
// an RPC by name) and the RPC parameter values in order (int64, float64,
// bool, string, []byte or nil). ctx ends on ATTENTION, kill or close; a
// handler that blocks must return then, or Server.Close waits for it. It
// returns handled=false to fall through to the built-in statements; a
// non-nil error is sent as an ERROR token (a *SQLError keeps its number and
// class, any other error becomes 50000, class 16); class 20 and up is fatal,
// as in SQL Server: DONE carries DONE_SRVERROR and the session is closed.
type Handler func(ctx context.Context, s *Session, sql string, args []any) (handled bool, res *Result, err error)

const (
	nameRE  = `((?:\[?\w+\]?\.)?\[?#{0,2}\w+\]?)`
	valueRE = `(@\w+|[-+]?\d+)`
)

var (
	reSelect1   = regexp.MustCompile(`(?is)^select\s+1$`)
	reSPID      = regexp.MustCompile(`(?is)^select\s+@@spid$`)
	reWaitfor   = regexp.MustCompile(`(?is)^waitfor\s+delay\s+'(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,3}))?)?'$`)
	reKill      = regexp.MustCompile(`(?is)^kill\s+(\d+)$`)
	reInsert    = regexp.MustCompile(`(?is)^insert\s+(?:into\s+)?` + nameRE + `\s*(?:\(\s*id\s*\))?\s*values\s*(\(.*\))$`)
	reTuple     = regexp.MustCompile(`(?s)^\(\s*` + valueRE + `\s*\)\s*(?:,\s*|$)`)
	reCount     = regexp.MustCompile(`(?is)^select\s+count\s*\(\s*\*\s*\)\s+from\s+` + nameRE + `(?:\s+where\s+id\s*=\s*` + valueRE + `)?$`)
	reDelete    = regexp.MustCompile(`(?is)^delete\s+(?:from\s+)?` + nameRE + `(?:\s+where\s+id\s*=\s*` + valueRE + `)?$`)
	reFirstWord = regexp.MustCompile(`^\S{1,64}`)
)

// execute runs one statement for session s.
func (s *Session) execute(ctx context.Context, req request) (*Result, error) {
	if h := s.srv.cfg.Handler; h != nil {
		vals := make([]any, len(req.args))
		for i, a := range req.args {
			vals[i] = a.value
		}
		handled, res, err := h(ctx, s, req.sql, vals)
		if handled || err != nil {
			if res == nil && err == nil {
				res = &Result{RowsAffected: -1}
			}
			return res, err
		}
	}
	if req.proc != "" {
		return nil, &SQLError{Number: 2812, State: 62, Class: 16,
			Message: fmt.Sprintf("Could not find stored procedure '%s'.", req.proc)}
	}
	text := strings.TrimSpace(req.sql)
	text = strings.TrimSpace(strings.TrimSuffix(text, ";"))
	switch {
	case reSelect1.MatchString(text):
		return &Result{Columns: []string{""}, Rows: [][]any{{int32(1)}}, cmd: cmdSelect}, nil
	case reSPID.MatchString(text):
		return &Result{Columns: []string{""}, Rows: [][]any{{int16(s.spid)}}, cmd: cmdSelect}, nil
	}
	if m := reWaitfor.FindStringSubmatch(text); m != nil {
		return waitfor(ctx, m)
	}
	if m := reKill.FindStringSubmatch(text); m != nil {
		return s.killStatement(m[1])
	}
	if res, ok, err := s.dmv(text, req.args); ok {
		return res, err
	}
	if m := reInsert.FindStringSubmatch(text); m != nil {
		return s.insert(tableKey(m[1]), m[2], req.args)
	}
	if m := reCount.FindStringSubmatch(text); m != nil {
		n, err := s.srv.store.count(tableKey(m[1]), m[2], req.args)
		if err != nil {
			return nil, err
		}
		return &Result{Columns: []string{""}, Rows: [][]any{{int32(n)}}, cmd: cmdSelect}, nil
	}
	if m := reDelete.FindStringSubmatch(text); m != nil {
		n, err := s.srv.store.delete(tableKey(m[1]), m[2], req.args)
		if err != nil {
			return nil, err
		}
		return &Result{RowsAffected: int64(n), cmd: cmdDelete}, nil
	}
	return nil, &SQLError{Number: 102, State: 1, Class: 15,
		Message: fmt.Sprintf("Incorrect syntax near '%s'.", reFirstWord.FindString(text))}
}

func waitfor(ctx context.Context, m []string) (*Result, error) {
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	sec, _ := strconv.Atoi(m[3])
	ms := 0
	if m[4] != "" {
		ms, _ = strconv.Atoi((m[4] + "00")[:3])
	}
	if h > 23 || mi > 59 || sec > 59 {
		return nil, &SQLError{Number: 148, State: 1, Class: 15,
			Message: "Incorrect time syntax in time string used with WAITFOR."}
	}
	d := time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute +
		time.Duration(sec)*time.Second + time.Duration(ms)*time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return &Result{RowsAffected: -1}, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (s *Session) killStatement(spidText string) (*Result, error) {
	spid, err := strconv.Atoi(spidText)
	if err != nil || spid > maxSPID {
		return nil, &SQLError{Number: 6106, State: 2, Class: 16,
			Message: fmt.Sprintf("Process ID %s is not an active process ID.", spidText)}
	}
	if spid == s.spid {
		return nil, &SQLError{Number: 6104, State: 1, Class: 16, Message: "Cannot use KILL to kill your own process."}
	}
	target := s.srv.session(spid)
	if target == nil {
		return nil, &SQLError{Number: 6106, State: 2, Class: 16,
			Message: fmt.Sprintf("Process ID %d is not an active process ID.", spid)}
	}
	target.close(false)
	return &Result{RowsAffected: -1}, nil
}

func (s *Session) insert(table, tuples string, args []arg) (*Result, error) {
	var ids []int64
	for rest := tuples; rest != ""; {
		m := reTuple.FindStringSubmatchIndex(rest)
		if m == nil {
			return nil, &SQLError{Number: 102, State: 1, Class: 15,
				Message: fmt.Sprintf("Incorrect syntax near '%s'.", reFirstWord.FindString(rest))}
		}
		id, err := resolve(rest[m[2]:m[3]], args)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
		rest = rest[m[1]:]
	}
	s.srv.store.insert(table, ids)
	return &Result{RowsAffected: int64(len(ids)), cmd: cmdInsert}, nil
}

// resolve turns an integer literal or a parameter reference into an id.
func resolve(v string, args []arg) (int64, error) {
	if !strings.HasPrefix(v, "@") {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, &SQLError{Number: 8115, State: 2, Class: 16,
				Message: "Arithmetic overflow error converting expression to data type bigint."}
		}
		return n, nil
	}
	for _, a := range args {
		if !strings.EqualFold(a.name, v) {
			continue
		}
		n, ok := a.value.(int64)
		if !ok {
			return 0, &SQLError{Number: 245, State: 1, Class: 16,
				Message: fmt.Sprintf("Conversion failed when converting parameter %s (%T) to data type bigint.", v, a.value)}
		}
		return n, nil
	}
	return 0, &SQLError{Number: 137, State: 2, Class: 15,
		Message: fmt.Sprintf("Must declare the scalar variable \"%s\".", v)}
}

// tableKey normalises a table name: brackets and schema dropped, lower case.
func tableKey(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return strings.ToLower(strings.Trim(name, "[]"))
}

// store is the server's table store: each table a multiset of int64 ids.
// Every table name exists and starts empty. Safe for concurrent use.
type store struct {
	mu     sync.Mutex // protects following fields
	tables map[string][]int64
}

func (st *store) insert(table string, ids []int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.tables == nil {
		st.tables = make(map[string][]int64)
	}
	st.tables[table] = append(st.tables[table], ids...)
}

// match returns a predicate for an optional "where id = v".
func match(where string, args []arg) (func(int64) bool, error) {
	if where == "" {
		return func(int64) bool { return true }, nil
	}
	id, err := resolve(where, args)
	if err != nil {
		return nil, err
	}
	return func(x int64) bool { return x == id }, nil
}

func (st *store) count(table, where string, args []arg) (int, error) {
	keep, err := match(where, args)
	if err != nil {
		return 0, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for _, id := range st.tables[table] {
		if keep(id) {
			n++
		}
	}
	return n, nil
}

func (st *store) delete(table, where string, args []arg) (int, error) {
	hit, err := match(where, args)
	if err != nil {
		return 0, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	rows := st.tables[table]
	kept := rows[:0]
	for _, id := range rows {
		if !hit(id) {
			kept = append(kept, id)
		}
	}
	n := len(rows) - len(kept)
	if n > 0 { // the table exists, so the map does too
		st.tables[table] = kept
	}
	return n, nil
}

func (st *store) ids(table string) []int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]int64(nil), st.tables[tableKey(table)]...)
}
