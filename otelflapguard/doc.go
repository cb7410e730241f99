// Package otelflapguard exports a flapguard pool's statistics and events as
// OpenTelemetry metrics: the database client connection-pool metrics of
// OpenTelemetry's semantic conventions, and flapguard's own (resets,
// severs, liveness checks, probes, tunnel events, health).
//
//	m, err := otelflapguard.New(otelflapguard.Options{PoolName: "orders"})
//	if err != nil { ... }
//	p, err := pool.Open("pgx", dsn, pool.Config{OnEvent: m.OnEvent})
//	if err != nil { ... }
//	if err := m.Observe(p); err != nil { ... }
//	defer m.Close()
//
// It is a module of its own (github.com/flapguard/flapguard/otelflapguard)
// so that a program that does not import it carries no OpenTelemetry code
// or requirement: the flapguard module itself does not require
// OpenTelemetry. It reads the pool only through its public API
// (Pool.Stats, Config.OnEvent, Event.Kind), so it follows the pool as it
// changes.
//
// # Semantic-convention instruments
//
// Every instrument carries db.client.connection.pool.name (Options.PoolName).
// database/sql exposes totals, not each wait or connection, so some
// instruments are derived, as said here:
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
//
// Not exported, because neither database/sql nor the pool's public API
// measures them: db.client.connection.timeouts (database/sql does not
// count waits that ended with the context), db.client.connection.create_time
// and db.client.connection.use_time (no per-connection timings). An
// instrument that always read 0 would claim what nobody measured.
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
