// Package flapguard keeps database/sql connection pools working across VPN
// flaps. This package holds no code; it is the walkthrough. The pool is in
// package pool (with one adapter package per driver), the vocabulary of
// tunnel events and the judgement of driver errors in package detect, and
// each feed of tunnel events in a package of its own under detect.
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
// Each driver gets full protection from its adapter package, imported for
// its side effect the way database/sql drivers are: pool/mssqladapter
// ("sqlserver", "mssql": go-mssqldb), pool/pgxadapter ("pgx", "pgx/v5")
// and pool/mysqladapter ("mysql"). The pool then dials every socket the
// driver uses. Importing pool alone compiles no driver; a driver that
// database/sql knows but no adapter registered is an error naming the
// import, unless Config.AllowSoftMode accepts soft reset and liveness only
// (no sever, no TCP hardening; Stats().SocketControl is false).
// OpenWithDialer gives full protection to any driver whose connector
// accepts a dial function; OpenDB wraps any driver.Connector without
// socket control. Like sql.Open, Open does not connect: Ping to check the
// server. The zero Config works; every field documents its default, and
// in every Config and Options of the project 0 means the default and a
// negative value means off where the field says so (an error elsewhere).
// Closing the *sql.DB (as GORM, sqlx and ent do) stops the pool too;
// sql.Conn.Raw reaches the driver's own connection (DriverConn unwraps).
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
// is pinged when it is borrowed, with a deadline the pool chooses from what
// the kernel knows (TCP_INFO: the largest of 4·rtt + 8·rttvar and
// rtt + rto + 4·rttvar + 100ms, which survives one lost packet) and from the
// pings it has observed (3× their mean), clamped to 200ms..2s. It is never
// the caller's whole deadline: pgx would otherwise spend it all on a dead
// connection. A connection that does not answer is replaced, invisibly to
// the caller. The pgx adapter skips pgx's own ping in ResetSession when the
// pool just pinged, so a borrow makes the round trips plain pgx makes.
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
// the driver adapter's rules, then the generic network rules of
// detect.Classify: alive (an ordinary SQL error, the caller's own
// cancellation), lost with an unknown outcome, or lost before anything was
// sent. A lost connection is marked bad, reported (EventConnLost) and its
// error wrapped in a *LostError: errors.Is(err, ErrConnLost) always,
// errors.Is(err, ErrOutcomeUnknown) when the statement may have run,
// errors.Is(err, driver.ErrBadConn) when it cannot have (only then does
// database/sql retry it; a driver's own ErrBadConn that the pool believes
// is passed through as it is). A driver's "safe to retry" is believed only
// where it is true: pgx's is checked against whether the connection was
// already closed when the operation began.
//
// The supervisor: verify, then act. Every signal from outside is a hint
// that starts a check with a deadline from measured times; only what a
// check finds severs, resets or cuts work in progress (pool/decide.go).
// The hints: a tunnel event (DOWN, UP, Rekey), a lost connection or a
// missed liveness ping, a failed connect, a flow retransmitting into the
// void (TCP_INFO, looked at every 100ms while connections are busy), a
// request waiting at the gate, and the routine look at an idle pool every
// ProbeInterval (1s, ±20%; skipped while traffic proves the path). A check
// looks at the path first: data arriving on any of the pool's sockets, or
// an idle connection's ping, else a fresh connection (a server error such
// as "too many connections" proves the path too). If the path answers and
// the hint was more than a routine look, it then looks at the current
// generation's flows: a ping on a few idle connections, and for each
// request in flight the kernel's own TCP keepalive probe on its socket (no
// byte of the database protocol; a flow whose request is unacknowledged
// cannot be probed and counts as dead only after three retransmission
// timeouts while the path answers). Then: path down — the gate stays shut,
// idle connections are retired (a new generation), requests in flight keep
// their own deadlines as with plain database/sql, and the path is checked
// again every 50ms for 30s, then every ProbeInterval, and at once when a
// request starts waiting; path back — the gate opens, the pool is rebuilt
// in the background (as many connections as it held idle) and orphaned
// sessions are reaped; flows found dead — their requests are cut at once,
// and when every flow checked was dead the generation is (flows of one
// path share fate) and the pool is reset and rebuilt. One limiter bounds
// every automatic reset: at most one per ResetCooldown (1s), and one owed
// at its end. Checks are coalesced (one runs, one is pending) and, while
// hint after hint finds nothing, spaced further apart (50ms doubling to
// 1s), so a storm, a replay or a wrong monitor costs a bounded number of
// pings and never a sever. The decisions are one pure function of state,
// input and time, tested by table and by random walks with invariants; an
// executor owns every goroutine and timer, under a context Close cancels.
//
// Tunnel events and the gate. Whoever knows the tunnels' state calls
// Pool.Notify(detect.Event{Tunnel, State, ...}), which never blocks
// (Pool.Accept says whether the event was taken and why not;
// Pool.NotifyWait waits for the check it started). The tunnels of
// Config.Tunnels are redundant paths: they report the path down only when
// every one is (Config.RequireAllTunnels when each carries part of the
// traffic); without a list the pool learns the tunnels from the events.
// Events are applied in arrival order; At only drops events older than
// Config.EventMaxAge and a DOWN dated before the last UP of its tunnel (a
// replay), and a future At is taken as now. The tunnel table is bounded.
// While a check started by a DOWN that reports the path down runs, new
// connections wait at the gate; if the check finds the path down the gate
// stays shut, and a request that needs a new connection waits up to
// DownWait (5s) in all, then fails with ErrTunnelDown. A DOWN the check
// found harmless is followed by a closer watch (a check every 100ms for a
// second), so a path that dies a moment after a correct DOWN is still
// found fast. The feeds deliver events to any
// detect.Notifier (a *pool.Pool is one; detect.Multi fans out):
// detect/syslogfeed parses router logs with rule packs (YAMAHA RTX,
// strongSwan with SA bookkeeping to tell a rekey from a down, Libreswan,
// Cisco IOS, Juniper, FortiGate), detect/webhookfeed takes authenticated
// JSON or Alertmanager alerts, detect/snsfeed takes CloudWatch TunnelState
// alarms delivered by AWS SNS, and detect/natsfeed spreads events across a
// fleet over NATS.
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
// twice. Attempts (4 by default) are spaced by exponential backoff (a new
// one per call, from RetryPolicy.NewBackOff) and wait at the gate instead
// of spending themselves on a dead path.
//
// Orphan reaping. Once the path answers again, the pool ends the server
// sessions that connections it lost or severed left behind (and those of
// connections cut by a caller's deadline just before a dead path was
// found; on a healthy path the server finishes or aborts the statement
// itself, as with plain database/sql). A session is ended only if its id
// and its age (pgx: the backend PID from the startup, no query) or
// fingerprint (MySQL, SQL Server: asked once at connect, since those
// drivers keep no id) still match, so a reused id is never hit. It uses a
// connection of its own, outside database/sql's pool, and keeps what it
// could not check for the next round. Config.Orphans: by default for
// PostgreSQL and MySQL/MariaDB, where ending one's own sessions needs no
// privilege; for SQL Server, whose KILL needs ALTER ANY CONNECTION, only
// with OrphansOn.
//
// Watching it: Pool.Stats (sql.DBStats plus the pool's counters),
// Config.OnEvent (called outside the pool's locks, on the goroutine that
// caused the event) and Config.Logger, which never sees the DSN password.
//
// # Where things live
//
//   - pool: the Pool. pool.go (Open, OpenDB, OpenWithDialer, Close),
//     config.go, generation.go (Reset, Sever), conn.go, stmt.go,
//     connector.go (the driver wrapper: generations, renew at borrow,
//     lost-connection handling), raw.go (DriverConn), dialer.go (socket
//     tracking, TCP hardening, liveness deadline), liveness.go, guard.go
//     (cancel guard), supervisor.go (the one background goroutine),
//     path.go and tunnels.go (Notify, the tunnel table, the gate's
//     decisions), probe.go, rebuild.go, gate.go, health.go, orphans.go,
//     retry.go (RunTx, RunConn), classify.go, errors.go, events.go,
//     stats.go, redact.go, clock.go, driver.go (RegisterDriver).
//   - pool/mssqladapter, pool/pgxadapter, pool/mysqladapter: go-mssqldb,
//     pgx and go-sql-driver/mysql support, each with its Classifier. A
//     program compiles only the drivers it imports.
//   - detect: event.go (Event, State, AllTunnels, Notifier, Multi) and
//     classify.go (Verdict, Classifier, WithRules, Classify, ConnectError);
//     no I/O. detect/syslogfeed, detect/webhookfeed, detect/snsfeed and
//     detect/natsfeed: the feeds, each a package of its own so a program
//     compiles only the feeds (and HTTP server, NATS client) it uses;
//     detect/internal/feedkit: what they share (body cap, rate-limited
//     logging, escaping).
//   - internal/sockopt: TCP_USER_TIMEOUT, the kernel's RTT and stall
//     detection. internal/faultproxy, internal/lab, internal/labrun,
//     internal/soak, internal/tdsserver and internal/pooltest: the test
//     machinery (a fault-injecting TCP proxy, real servers behind real
//     kernel faults in network namespaces, scenarios run against plain
//     database/sql and a Pool side by side on a LAN and an emulated WAN,
//     a chaos soak with invariants, a SQL Server wire-protocol double, the
//     checks every adapter runs). compat: GORM and sqlx over flapguard, a
//     test-only module. docs/drivers.md: the driver facts the code relies
//     on, with upstream file:line.
//   - examples, a module of its own so that demo dependencies stay out of
//     flapguard's go.mod: flapdemo, sqlserver, pgx, mysql, metrics, fleet,
//     tunnelhook, awsvpn, quickstart, and labreport (regenerates
//     BENCHMARKS.md).
package flapguard
