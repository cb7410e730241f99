// Package pool is a drop-in database/sql pool that survives VPN flaps.
//
// Swap sql.Open for Open and keep passing the same *sql.DB everywhere:
//
//	p, err := pool.Open("sqlserver", dsn, pool.Config{}) // was: sql.Open("sqlserver", dsn)
//	if err != nil { ... }
//	defer p.Close()
//	db := p.DB() // the standard *sql.DB: existing code, sqlx and GORM keep working
//
// Underneath, the pool wraps the driver's connector:
//
//   - Generation reset (Reset): every connection is stamped with the
//     generation it was made in. A reset starts a new one: idle connections
//     are closed at once, connections in use are discarded when returned,
//     and a pooled connection whose driver connection was closed gets a new
//     one when it is next borrowed, before anything is sent. No query fails
//     because of a reset by itself.
//   - Sever: a reset that also closes the sockets of every old connection,
//     so requests hung on a blackholed flow return now. It needs the pool
//     to dial the sockets itself: built in for go-mssqldb ("sqlserver",
//     "mssql"), and for pgx and go-sql-driver/mysql through pool/pgxadapter
//     and pool/mysqladapter; any other driver through OpenWithDialer. OpenDB and
//     other drivers get soft reset and liveness only.
//   - Liveness at borrow: a connection idle longer than Config.LivenessIdle
//     is pinged with a deadline the pool derives from the socket's measured
//     round-trip time (TCP_INFO), never the caller's whole deadline.
//   - TCP hardening: keepalive and TCP_USER_TIMEOUT on every socket, so a
//     dead path is noticed in seconds without per-read deadlines that would
//     kill long queries.
//   - Cancel guard: when a caller's context ends and go-mssqldb waits 5s for
//     its ATTENTION to be confirmed, the pool closes the socket after
//     Config.CancelGrace.
//   - Detection: errors are classified (detect.Classifier) into ordinary
//     errors, lost connections with an unknown outcome (ErrOutcomeUnknown)
//     and losses before anything was sent. A background prober tells one bad
//     connection from a dead path (State: healthy, suspect, down,
//     recovering) and from a path that works while old flows are dead (the
//     rekey case), and resets or severs accordingly, with a cooldown.
//   - Tunnel events (Notify, or a feed from package detect): Down severs and
//     gates new connections, Up resets, checks a canary and releases.
//   - Retry (RunConn, RunTx): only what cannot have reached the server, a
//     transaction lost before COMMIT, or work the caller marks idempotent.
//   - Orphan reaping: server sessions of lost connections are ended once
//     the path is back (Config.Orphans).
//
// A Pool is safe for concurrent use. It owns two goroutines (the prober and
// the tunnel-event loop), stopped by Close.
package pool
