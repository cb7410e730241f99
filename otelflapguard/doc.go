// Package otelflapguard exports a flapguard pool's statistics and events as
// OpenTelemetry metrics: the database client connection-pool metrics of
// OpenTelemetry's semantic conventions, and flapguard's own (resets,
// severs, liveness checks, probes, tunnel events, health).
//
//	m, err := otelflapguard.New(otelflapguard.Options{PoolName: "orders"})
//	if err != nil { ... }
//	p, err := pool.Open("pgx", dsn, pool.Config{OnEvent: m.OnEvent, Observer: m.Observer()})
//	if err != nil { ... }
//	if err := m.Observe(p); err != nil { ... }
//	defer m.Close()
//
// It is a module of its own (github.com/flapguard/flapguard/otelflapguard)
// so that a program that does not import it carries no OpenTelemetry code
// or requirement: the flapguard module itself does not require
// OpenTelemetry. It reads the pool only through its public API
// (Pool.Stats, Config.OnEvent, Config.Observer, Event.Kind), so it follows
// the pool as it changes.
//
// # Semantic-convention instruments
//
// Every instrument carries db.client.connection.pool.name (Options.PoolName).
// database/sql exposes totals, not each wait or connection, so some
// instruments are derived, as said here. The last three are recorded at
// each event by the hooks Metrics.Observer returns (set them as the pool's
// Config.Observer; a pool without them leaves the three empty), with
// buckets from 100µs to 60s (the SDK's default buckets are meant for
// milliseconds; a View can set others):
//
//	db.client.connection.count           {connection}  state=idle|used: DBStats.Idle, DBStats.InUse (exact)
//	db.client.connection.max             {connection}  DBStats.MaxOpenConnections; not reported while unlimited (0)
//	db.client.connection.idle.max        {connection}  Options.MaxIdleConns: database/sql has no getter for it
//	db.client.connection.idle.min        {connection}  0: database/sql keeps no minimum of idle connections
//	db.client.connection.pending_requests {request}    mean number of requests waiting for a connection over
//	                                                   the interval since the previous collection, from the
//	                                                   growth of DBStats.WaitDuration (Little's law); a wait
//	                                                   counts when it ends
//	db.client.connection.wait_time       s             histogram of DBStats.WaitCount and WaitDuration: the
//	                                                   count is exact, each wait of an interval is recorded as
//	                                                   the interval's mean (database/sql keeps only totals),
//	                                                   and the sum lags by the waits still in progress
//	db.client.connection.create_time     s             histogram of the driver's Connect calls the pool made that
//	                                                   made a connection (pool.Observer.ConnCreated), whatever for:
//	                                                   a request, a conn renewed at borrow, the pool's checks, its
//	                                                   rebuild, orphan reaping; its count is Stats.Connects (but
//	                                                   for a rare race with socket control, see ConnCreated). A
//	                                                   failed connect created nothing and is not recorded: its
//	                                                   time would mix refusals of a millisecond with the
//	                                                   seconds of a timeout (a request's connect that timed out
//	                                                   is counted in db.client.connection.timeouts)
//	db.client.connection.use_time        s             histogram of each borrow, from database/sql lending a
//	                                                   connection to getting it back (pool.Observer.ConnUsed):
//	                                                   from ResetSession, or the first operation of a new
//	                                                   connection (database/sql tells a driver nothing when it
//	                                                   lends one), to IsValid, or Close for one returned broken;
//	                                                   the pool's own borrows (its rebuild) count too
//	db.client.connection.timeouts        {timeout}     flapguard.timeout.kind=gate|connect: the timeouts flapguard
//	                                                   sees while a request obtains a connection
//	                                                   (pool.Observer.Timeout). gate: a request refused at the
//	                                                   pool's gate while the path is down (its error matches
//	                                                   pool.ErrTunnelDown: Config.DownWait passed, or its context
//	                                                   ended there), once per request. connect: a connect made
//	                                                   for a request that ended at a deadline (ConnectTimeout,
//	                                                   DialTimeout, the request's own), once per connect.
//	                                                   database/sql's own wait for a free connection at
//	                                                   SetMaxOpenConns is invisible to a driver: a wait that
//	                                                   ends with its context is not counted (wait_time counts
//	                                                   its waits)
//
// # flapguard's instruments
//
// Cumulative counters read from Pool.Stats at each collection (exact):
//
//	flapguard.pool.resets               {reset}      Stats.Resets (including severs)
//	flapguard.pool.severs               {sever}      Stats.Severs
//	flapguard.pool.severed_sockets      {socket}     Stats.SeveredSockets
//	flapguard.pool.connects             {connection} Stats.Connects
//	flapguard.pool.connections_lost     {operation}  Stats.ConnsLost
//	flapguard.pool.liveness.checks      {check}      Stats.LivenessChecks
//	flapguard.pool.liveness.failures    {check}      Stats.LivenessFailures
//	flapguard.pool.probes               {probe}      Stats.Probes
//	flapguard.pool.probe.failures       {probe}      Stats.ProbeFailures
//	flapguard.pool.tunnel_events        {event}      flapguard.outcome=applied|ignored: Stats.Events, EventsIgnored
//	flapguard.pool.orphans_reaped       {session}    Stats.OrphansReaped
//	flapguard.pool.rebuilt              {connection} Stats.Rebuilt
//
// Gauges read from Pool.Stats:
//
//	flapguard.pool.generation           {generation} Stats.Generation
//	flapguard.pool.health               1            flapguard.health=<state>: 1 for the current state, 0 for the others
//	flapguard.pool.tunnel_down          1            1 while a tunnel event gates new connections
//
// And one counter fed by Config.OnEvent, for every kind of pool.Event, by
// its name (reset, sever, conn-lost, liveness-failed, health-change,
// tunnel, tunnel-ignored, probe, orphans-reaped, and any kind added later):
//
//	flapguard.pool.events               {event}      flapguard.event.kind=<Event.Kind>
package otelflapguard
