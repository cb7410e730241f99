// Package flapguard keeps database/sql connection pools working across VPN
// flaps. This package holds no code; it is the walkthrough. The pool is in
// package pool, the detection of lost connections and tunnel events in
// package detect.
//
// # The problem
//
// An application reaches its database through a site-to-site IPsec tunnel.
// The tunnel goes down for a few seconds, or comes back with new security
// associations after a rekey, and every TCP connection that crossed it is
// silently dead: no FIN, no RST, nothing tells either end. database/sql
// keeps those connections in its pool and lends them out as if they were
// fine. A query written into one waits until TCP gives up retransmitting
// (about 15 minutes on Linux) or until the caller's deadline. database/sql
// discards a connection only when the driver says it is bad, so after a
// flap every pooled connection must first fail one of the application's
// requests. Meanwhile the server keeps the dead sessions, and their locks,
// until its own keepalive notices.
//
// # The drop-in
//
// Two lines change; code that takes a *sql.DB stays as it is:
//
//	p, err := pool.Open("sqlserver", dsn, pool.Config{}) // was: db, err := sql.Open("sqlserver", dsn)
//	if err != nil { ... }
//	defer p.Close()
//	db := p.DB() // the same *sql.DB for the Pool's whole life
//
// "sqlserver" and "mssql" (go-mssqldb) are built in. For PostgreSQL through
// pgx and for MySQL/MariaDB through go-sql-driver/mysql, blank-import
// pool/pgxadapter or pool/mysqladapter and open "pgx" or "mysql". These get
// full protection, because the pool dials every socket the driver uses.
// OpenWithDialer gives the same to any driver whose connector accepts a dial
// function; OpenDB wraps any driver.Connector, and Open any other registered
// driver name, without socket control (no sever, no TCP hardening;
// Stats().SocketControl is false). Like sql.Open, Open does not connect:
// Ping to check the server. The zero Config works; every field documents
// its default. Close the Pool, not the *sql.DB.
//
// # What happens underneath
//
// Generation reset. Every driver connection is stamped with the pool
// generation it was dialed in. Pool.Reset starts a new generation: idle
// connections are closed at once, connections in use are discarded when
// they are returned. A pooled connection whose driver connection is stale
// gets a new one when it is next borrowed, before anything of the caller's
// is sent, so no query fails because of a Reset.
//
// Sever. Pool.Sever is a Reset that also closes the sockets of every
// old-generation connection (and of connections still being made), so
// requests hung on a dead flow return now instead of at their deadline.
//
// Liveness at borrow. A connection idle for longer than LivenessIdle (1s)
// is pinged when it is borrowed, with a deadline the pool chooses from the
// measured round-trip time (the kernel's TCP_INFO; observed ping times
// without socket control), clamped to 200ms..2s. It is never the caller's
// whole deadline: pgx would otherwise spend it all on a dead connection. A
// connection that does not answer is replaced, invisibly to the caller.
//
// TCP hardening. Every socket the pool dials gets keepalive (15s idle, 5s
// interval, 3 probes) and TCP_USER_TIMEOUT (15s), which bounds a request
// written into a dead tunnel where keepalive never fires, without limiting
// long queries on a live server. Dials are bounded by DialTimeout (3s) and
// whole connection attempts (dial, TLS, login) by ConnectTimeout (10s), so
// a request with no deadline cannot hang in a login into a dead tunnel; a
// connect that started while the path was dead is cut when it comes back
// and tried again, invisibly.
// go-mssqldb waits 5s for the server to confirm a cancel; the pool closes
// the socket CancelGrace (50ms) after the caller's context ends instead.
//
// Classification. Every driver error is judged by Config.Classifier, then
// the driver's own rules, then detect.Default: alive (an ordinary SQL
// error, the caller's own cancellation), lost with an unknown outcome, or
// lost before anything was sent. A lost connection is marked bad, reported
// (EventConnLost) and its error wrapped in a *LostError: errors.Is(err,
// ErrConnLost) always, errors.Is(err, ErrOutcomeUnknown) when the statement
// may have run, errors.Is(err, driver.ErrBadConn) when it cannot have (only
// then does database/sql retry it; a driver's own ErrBadConn that the pool
// believes is passed through as it is). A driver's "safe to retry" is believed
// only where it is true: pgx's is checked against whether the connection
// was already closed when the operation began.
//
// The prober and its states. One goroutine per pool judges the path:
// Healthy, Suspect (a connection was lost, failed its liveness
// check, or is stalled retransmitting into the void), Unreachable (a fresh
// connection failed, or a tunnel is reported down) and Recovering
// (the path answers again). It wakes every ProbeInterval (1s, ±20%) or at
// once when a failure kicks it. Real traffic proves the path; otherwise it
// pings an idle connection, and on any doubt it makes a fresh connection
// (dial, login, ping, within ProbeTimeout, 2s). A server error such as "too
// many connections" still proves the path, and so does other work that
// succeeds while a fresh connection is failing (the probe began before the
// path came back). Fresh connection fails: Down, and one sever. Fresh
// connection works but old ones are dead (the rekey case): a new
// generation, and only the connections whose sockets the kernel shows
// retransmitting into the void are severed, so a healthy query in flight
// is never cut because another connection died; then Recovering, and
// Healthy once operations succeed.
// Automatic resets are at least ResetCooldown (1s) apart, so a flapping
// tunnel cannot make the pool churn.
//
// Tunnel events and the DOWN gate. Whoever knows the tunnel's state calls
// Pool.Notify(detect.Event{Tunnel, State, ...}), which never blocks; the
// pool applies events in order on its own goroutine, ignores tunnels not in
// Config.Tunnels and events older than the last one applied for the same
// tunnel. Down severs the pool and shuts a gate: a request that needs a new connection waits
// up to DownWait (5s) for Up, then fails with ErrTunnelDown. Up starts a
// new generation, checks one fresh canary connection and opens the gate;
// if the canary fails the gate stays shut until the prober finds the path
// healthy. The prober also reopens the gate when a fresh connection
// succeeds while a Down is in force (a Down whose Up never came). Rekey
// resets without a gate. The feeds in detect deliver events to any
// detect.Notifier (a *pool.Pool is one; detect.Multi fans out): Syslog
// parses router logs with rule packs (YAMAHA RTX, strongSwan with SA
// bookkeeping to tell a rekey from a down, Libreswan, Cisco IOS, Juniper,
// FortiGate), Webhook takes authenticated JSON or Alertmanager alerts, and
// detect/natsfeed spreads events across a fleet over NATS.
//
// Retry: RunTx and RunConn. Pool.RunTx runs a function in a transaction
// and commits; Pool.RunConn runs one on a connection of its own. Both
// retry on a fresh connection under a RetryPolicy whose zero value is safe
// for writes: a failure before anything reached the server is retried, and
// so is a transaction whose connection was lost before COMMIT (it cannot
// have committed; if retries run out the error says ErrNotCommitted). A
// connection lost while COMMIT, or a RunConn statement, was in flight is
// not retried: the error matches ErrOutcomeUnknown, and the application
// must find out what happened (a client-generated id helps) before running
// it again. RetryPolicy.Idempotent allows that retry for work that may run
// twice. Attempts (4 by default) are spaced by exponential backoff and
// wait at the DOWN gate instead of spending themselves on a dead path.
//
// Orphan reaping. Once the path answers again, the pool ends the server
// sessions its lost connections (and connections cut by a caller's
// deadline) left behind, each only if its session id and fingerprint (the
// client port, and the start time where the server reports it, as seen at
// connect) still match, so a reused id is never hit. It uses a connection
// of its own, outside database/sql's pool, and keeps what it could not
// check for the next round. Config.Orphans: by default for PostgreSQL and
// MySQL/MariaDB, where ending one's own sessions needs no privilege; for
// SQL Server, whose KILL needs ALTER ANY CONNECTION, only with OrphansOn.
//
// Watching it: Pool.Stats (sql.DBStats plus the pool's counters),
// Config.OnEvent (called outside the pool's locks, on the goroutine that
// caused the event) and Config.Logger, which never sees the DSN password.
//
// # Where things live
//
//   - pool: the Pool. config.go (Config and its defaults), pool.go (Open,
//     OpenDB, OpenWithDialer, Reset, Sever, Close), conn.go, stmt.go and
//     connector.go (the driver wrapper: generations, renew at borrow,
//     lost-connection handling), dialer.go (socket tracking, TCP
//     hardening, liveness deadline), clock.go, liveness.go, guard.go (cancel grace), classify.go,
//     errors.go, health.go and state.go (states), prober.go, gate.go and
//     notify.go (tunnel events), retry.go (RunTx, RunConn), orphans.go,
//     events.go, stats.go, redact.go, driver.go (RegisterDriver) and
//     mssql.go (go-mssqldb support).
//   - pool/pgxadapter, pool/mysqladapter: pgx and go-sql-driver/mysql
//     support, each with its Classifier. A program compiles only the
//     drivers it imports.
//   - detect: classify.go (Verdict, Classifier, Default, Chain, WithRules)
//     and classify_mssql.go (go-mssqldb rules); event.go (Event, State,
//     Notifier, Multi); rules.go and rulepacks.go (log parsing); syslog.go
//     with syslogmsg.go, and webhook.go (receivers). detect/natsfeed: the
//     NATS fan-out, a package of its own so that only programs that use it
//     compile the NATS client.
//   - internal/sockopt: TCP_USER_TIMEOUT, the kernel's RTT and stall
//     detection. internal/faultproxy, internal/lab, internal/labrun,
//     internal/soak, internal/tdsserver and internal/pooltest: the test
//     machinery (a fault-injecting TCP proxy, real servers behind real
//     kernel faults in network namespaces, scenarios run against plain
//     database/sql and a Pool side by side, a chaos soak with invariants,
//     a SQL Server wire-protocol double, the checks every adapter runs).
//   - examples, a module of its own so that demo dependencies stay out of
//     flapguard's go.mod: flapdemo, sqlserver, pgx, mysql, metrics, fleet,
//     tunnelhook, and labreport (regenerates BENCHMARKS.md).
package flapguard
