// Package pool is a drop-in database/sql pool that survives VPN flaps.
//
// Swap sql.Open for Open and keep passing the same *sql.DB everywhere:
//
//	p, err := pool.Open("sqlserver", dsn, pool.Config{}) // was: sql.Open("sqlserver", dsn)
//	if err != nil { ... }
//	defer p.Close()
//	db := p.DB() // the standard *sql.DB: existing code, sqlx and GORM keep working
//
// Import the adapter of each driver you use, for its side effect:
// pool/mssqladapter ("sqlserver", "mssql"), pool/pgxadapter ("pgx",
// "pgx/v5"), pool/mysqladapter ("mysql"). This package compiles no driver.
//
// Underneath, the pool wraps the driver's connector:
//
//   - Generation reset ([Pool.Reset]): every connection is stamped with the
//     generation it was made in. A reset starts a new one: idle connections
//     are closed at once, connections in use are discarded when returned,
//     and a pooled connection whose driver connection was closed gets a new
//     one when it is next borrowed, before anything is sent. No query fails
//     because of a reset by itself.
//   - Sever ([Pool.Sever]): a reset that also closes the sockets of every
//     old connection, so requests hung on a blackholed flow return now. It
//     needs the pool to dial the sockets itself: the adapters do, and
//     [OpenWithDialer] does for any driver whose connector takes a dial
//     function. [OpenDB] and soft mode get soft reset and liveness only.
//   - Liveness at borrow: a connection idle longer than Config.LivenessIdle
//     is pinged with a deadline derived from the kernel's RTT and
//     retransmission timeout and the pings observed (see [Config]), never
//     the caller's whole deadline, and at no round trip the plain driver
//     would not make.
//   - TCP hardening: keepalive and TCP_USER_TIMEOUT on every socket.
//   - Cancel guard: when a caller's context ends and go-mssqldb waits 5s for
//     its ATTENTION to be confirmed, the pool closes the socket after
//     Config.CancelGrace.
//   - Verify, then act (the supervisor): every outside signal — a tunnel
//     event, a lost connection, a failed connect, a stalled flow — is a
//     hint that starts a check with a deadline from measured times; only a
//     checked fact severs, resets or cuts a request. A path checked down
//     shuts the gate and retires the idle connections; requests in flight
//     keep their own deadlines, and are cut the moment the path answers
//     and their own flow is found dead (a kernel TCP keepalive probe: no
//     database bytes). When every flow checked is dead while the path
//     answers (the rekey case) the pool is reset and rebuilt. The
//     decisions are one pure state machine (decide.go); one limiter bounds
//     every automatic reset (Config.ResetCooldown). After the path comes
//     back the pool is rebuilt in the background (with pgxadapter, the
//     rebuilt conns have the statements the pool's conns used prepared
//     before any request gets them: Driver.Warm).
//   - Tunnel events ([Pool.Notify], [Pool.Accept], [Pool.NotifyWait], or a
//     feed under detect/): hints, as above. The tunnels of Config.Tunnels
//     are redundant paths: while a check started by a DOWN of the last one
//     up runs, new connections wait at the gate.
//   - Retry ([Pool.RunConn], [Pool.RunTx]): only what cannot have reached
//     the server, a transaction lost before COMMIT, or work the caller marks
//     idempotent.
//   - Orphan reaping: server sessions of lost connections are ended once the
//     path is back (Config.Orphans).
//   - Transparency: sql.Conn.Raw reaches the driver's own connection
//     ([DriverConn]); closing the *sql.DB stops the pool.
//
// In every Config of the project, 0 means the field's documented default;
// a negative value turns the feature off where the field says so and is an
// error naming the field elsewhere.
//
// A Pool is safe for concurrent use. It owns one goroutine (the
// supervisor) and the jobs it starts, stopped by [Pool.Close] or by
// closing its *sql.DB.
package pool
