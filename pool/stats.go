package pool

import (
	"database/sql"
	"sync/atomic"
)

// Stats is sql.DBStats plus what the pool did about the path.
type Stats struct {
	sql.DBStats

	Generation       uint64 // current generation; starts at 1
	Health           Health // the path's health as the pool sees it
	SocketControl    bool   // the pool dials the driver's sockets (sever works)
	TunnelDown       bool   // the gate is shut: a check found the path down, or a DOWN's check runs
	Resets           uint64 // resets of any kind, including severs
	Severs           uint64 // resets that closed old sockets
	SeveredSockets   uint64 // sockets closed by severs and cancel guards
	ResetClosed      uint64 // idle connections a reset closed at once
	Connects         uint64 // connections made
	ConnsLost        uint64 // operations that failed with a lost connection
	LivenessChecks   uint64 // pings at borrow
	LivenessFailures uint64 // pings at borrow that failed
	Probes           uint64 // fresh-connection probes, and the sentinel sessions (sentinel.go) the checks keep
	ProbeFailures    uint64
	Events           uint64 // tunnel events applied
	EventsIgnored    uint64 // tunnel events ignored (other tunnel, invalid, too old, too many tunnels)
	EventsFuture     uint64 // tunnel events dated in the future, taken as received now
	TunnelsForgotten uint64 // learned tunnels dropped from the bounded table
	OrphansReaped    uint64 // server sessions killed after recovery
	Renewed          uint64 // pooled conns given a new driver conn at borrow
	Rebuilt          uint64 // conns reopened in the background after a reset

	// Sessions that add up (sessions.go). DBStats.OpenConnections counts
	// what database/sql holds; Gone of those have no server session any
	// more, and OwnSessions are the pool's own, outside database/sql:
	// the server sees OpenConnections - Gone + OwnSessions from this pool.
	Gone         int    // conns database/sql holds whose session the pool knows is gone (lost, severed, retired by a reset, closed by the server)
	OwnSessions  int    // sessions the pool holds open itself now (probes, orphan reaping, a rebuild in progress)
	GoneAtBorrow uint64 // borrows that found the server had closed the session (borrowcheck.go); none was sent on
}

type counters struct {
	resets, severs, severedSockets, resetClosed, connects, connsLost atomic.Uint64
	livenessChecks, livenessFailures, probes, probeFailures          atomic.Uint64
	events, eventsIgnored, orphansReaped, renewed                    atomic.Uint64
	eventsFuture, tunnelsForgotten, rebuilt                          atomic.Uint64

	goneAtBorrow atomic.Uint64 // borrowcheck.go
	rawOpen      atomic.Int64  // driver conns open now (sessions.go)
}

// Stats returns a snapshot of the pool's statistics.
func (p *Pool) Stats() Stats {
	s := &p.stats
	st := Stats{
		DBStats:          p.db.Stats(),
		Generation:       p.gen.Load(),
		Health:           Health(p.healthNow.Load()),
		SocketControl:    p.dialer != nil,
		TunnelDown:       p.gate.blocked(),
		Resets:           s.resets.Load(),
		Severs:           s.severs.Load(),
		SeveredSockets:   s.severedSockets.Load(),
		ResetClosed:      s.resetClosed.Load(),
		Connects:         s.connects.Load(),
		ConnsLost:        s.connsLost.Load(),
		LivenessChecks:   s.livenessChecks.Load(),
		LivenessFailures: s.livenessFailures.Load(),
		Probes:           s.probes.Load(),
		ProbeFailures:    s.probeFailures.Load(),
		Events:           s.events.Load(),
		EventsIgnored:    s.eventsIgnored.Load(),
		OrphansReaped:    s.orphansReaped.Load(),
		Renewed:          s.renewed.Load(),
		EventsFuture:     s.eventsFuture.Load(),
		TunnelsForgotten: s.tunnelsForgotten.Load(),
		Rebuilt:          s.rebuilt.Load(),
	}
	st.Gone, st.OwnSessions = p.sessionCounts()
	st.GoneAtBorrow = s.goneAtBorrow.Load()
	return st
}
