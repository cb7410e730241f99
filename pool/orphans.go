package pool

import (
	"context"
	"database/sql/driver"
)

// querySessionID asks a fresh connection for its server session id.
func querySessionID(ctx context.Context, c driver.Conn, query string) int64 {
	q, ok := c.(driver.QueryerContext)
	if !ok {
		return 0
	}
	rows, err := q.QueryContext(ctx, query, nil)
	if err != nil {
		return 0
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if len(dest) != 1 || rows.Next(dest) != nil {
		return 0
	}
	switch v := dest[0].(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case []byte:
		var n int64
		for _, b := range v {
			if b < '0' || b > '9' {
				return 0
			}
			n = n*10 + int64(b-'0')
		}
		return n
	}
	return 0
}

// reapOrphans is filled in by the orphan-reaping work (issue: detect §6).
func (p *Pool) reapOrphans() {}
