package pool

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// The path model. A pool's path to its server runs through the tunnels in
// Config.Tunnels, which are redundant (an AWS Site-to-Site VPN connection
// is always two tunnels, taken down one at a time for maintenance): the
// path is down only when every one of them is down. With
// Config.RequireAllTunnels each tunnel carries part of the traffic and any
// DOWN takes the path down.
//
// With Config.Tunnels empty the pool learns the tunnels from the events it
// gets. A DOWN when no other tunnel is known to be up takes the path down
// at once (the single-tunnel case: requests hung on it return now). A DOWN
// while another tunnel is known up is verified first with a fresh
// connection whose deadline comes from measured connect times: only if that
// fails is the path down. So one redundant tunnel's DOWN never becomes an
// outage, and the single-tunnel case stays instant.

// maxLearnedTunnels bounds the tunnels a pool without Config.Tunnels
// remembers; the one heard from longest ago is forgotten first.
const maxLearnedTunnels = 64

// maxEventSkew: an event dated further ahead than this is treated as
// received now (a sender's clock running fast must not freeze a tunnel).
const maxEventSkew = 5 * time.Second

type tunnelInfo struct {
	down bool
	seen time.Time // last event received for it
}

// tunnelTable is the supervisor's view of the tunnels. Only the supervisor
// goroutine touches it.
type tunnelTable struct {
	configured []string // Config.Tunnels; nil: learn from events
	series     bool     // Config.RequireAllTunnels
	m          map[string]*tunnelInfo
	allDown    bool // an AllTunnels DOWN is in force
	evicted    uint64
	// confirmed: learned tunnels whose DOWN a failed fresh connection
	// proved to be an outage; the path is down while one of them is.
	// checked: learned tunnels whose DOWN a fresh connection found harmless
	// (another tunnel carries the traffic). Both last until the tunnel's
	// next event.
	confirmed, checked map[string]bool
	// overridden: tunnels reported down when the path was found working
	// anyway (markAllUp); their UP is expected, not a sign of a missed DOWN.
	overridden map[string]bool
}

func newTunnelTable(cfg *Config) tunnelTable {
	t := tunnelTable{configured: cfg.Tunnels, series: cfg.RequireAllTunnels, m: make(map[string]*tunnelInfo)}
	for _, id := range cfg.Tunnels {
		t.m[id] = &tunnelInfo{}
	}
	return t
}

// apply records ev (received at now). It reports whether ev was an Up for
// a tunnel not known to be down while no other tunnel is known up: old
// flows may be dead (a rekey whose DOWN was missed).
func (t *tunnelTable) apply(ev detect.Event, now time.Time) (unexpectedUp bool) {
	if ev.Tunnel == detect.AllTunnels {
		switch ev.State {
		case detect.Down:
			t.allDown = true
			for _, ti := range t.m {
				ti.down, ti.seen = true, now
			}
		case detect.Up:
			unexpectedUp = !t.allDown && !t.anyDown() && len(t.overridden) == 0
			clear(t.overridden)
			t.allDown = false
			clear(t.confirmed)
			clear(t.checked)
			for _, ti := range t.m {
				ti.down, ti.seen = false, now
			}
		}
		return unexpectedUp
	}
	ti := t.m[ev.Tunnel]
	if ti == nil {
		if t.configured != nil {
			return false // Notify filtered it; defensive
		}
		if len(t.m) >= maxLearnedTunnels {
			t.evictOldest()
		}
		ti = &tunnelInfo{}
		t.m[ev.Tunnel] = ti
	}
	ti.seen = now
	overridden := t.overridden[ev.Tunnel]
	delete(t.checked, ev.Tunnel)
	delete(t.overridden, ev.Tunnel)
	switch ev.State {
	case detect.Down:
		ti.down = true
	case detect.Up:
		unexpectedUp = !ti.down && !t.allDown && !t.othersUp(ev.Tunnel) && !overridden
		ti.down = false
		delete(t.confirmed, ev.Tunnel)
		t.allDown = false // an Up for a named tunnel answers a DOWN for all
	}
	return unexpectedUp
}

func (t *tunnelTable) evictOldest() {
	var oldest string
	var at time.Time
	for id, ti := range t.m {
		if oldest == "" || ti.seen.Before(at) {
			oldest, at = id, ti.seen
		}
	}
	delete(t.m, oldest)
	delete(t.confirmed, oldest)
	delete(t.checked, oldest)
	t.evicted++
}

func (t *tunnelTable) anyDown() bool {
	for _, ti := range t.m {
		if ti.down {
			return true
		}
	}
	return false
}

// othersUp reports whether a tunnel other than id is known and up.
func (t *tunnelTable) othersUp(id string) bool {
	for k, ti := range t.m {
		if k != id && !ti.down {
			return true
		}
	}
	return false
}

// pathState says whether the tunnels take the path down (down), or a
// learned tunnel is down while another is up, which a fresh connection
// must verify (verify names it).
func (t *tunnelTable) pathState() (down bool, verify string) {
	if t.allDown {
		return true, ""
	}
	var downIDs []string
	for id, ti := range t.m {
		if ti.down {
			downIDs = append(downIDs, id)
		}
	}
	if len(downIDs) == 0 {
		return false, ""
	}
	switch {
	case t.configured != nil && t.series:
		return true, ""
	case t.configured != nil:
		return len(downIDs) == len(t.m), ""
	case len(downIDs) == len(t.m):
		return true, ""
	}
	slices.Sort(downIDs)
	for _, id := range downIDs {
		if t.confirmed[id] {
			return true, ""
		}
	}
	for _, id := range downIDs {
		if !t.checked[id] {
			return false, id
		}
	}
	return false, ""
}

// confirmDown records that id's DOWN is an outage (see confirmed).
func (t *tunnelTable) confirmDown(id string) {
	if t.confirmed == nil {
		t.confirmed = make(map[string]bool)
	}
	if ti := t.m[id]; ti != nil && ti.down {
		t.confirmed[id] = true
	}
}

// checkedHarmless records that id's DOWN left the path working.
func (t *tunnelTable) checkedHarmless(id string) {
	if t.checked == nil {
		t.checked = make(map[string]bool)
	}
	if ti := t.m[id]; ti != nil && ti.down {
		t.checked[id] = true
	}
}

// markAllUp is used when the path answers although tunnels are marked
// down (a DOWN whose UP never came).
func (t *tunnelTable) markAllUp() {
	if t.overridden == nil {
		t.overridden = make(map[string]bool)
	}
	t.allDown = false
	clear(t.confirmed)
	clear(t.checked)
	for id, ti := range t.m {
		if ti.down {
			t.overridden[id] = true
		}
		ti.down = false
	}
}

// inbox is where Notify leaves events for the supervisor. It keeps the
// latest Down/Up per tunnel and whether a Rekey came, so a storm of
// toggles costs a map write each and the supervisor sees only where the
// storm ended (the trailing edge). A Down followed by an Up of the same
// tunnel before the supervisor looked is kept too (dip): the tunnel
// toggled, which is not the same as an Up out of nowhere (a missed DOWN,
// see tunnelTable.apply). It is bounded like the tunnel table.
type inbox struct {
	mu    sync.Mutex // protects following
	seq   uint64
	state map[string]queued // latest Down or Up per tunnel
	dip   map[string]queued // a Down overwritten by a later Up
	rekey map[string]queued
	limit int
}

type queued struct {
	ev  detect.Event
	seq uint64
}

// put stores ev; it reports false when the inbox is full of other tunnels.
func (in *inbox) put(ev detect.Event) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	m := &in.state
	if ev.State == detect.Rekey {
		m = &in.rekey
	}
	if *m == nil {
		*m = make(map[string]queued)
	}
	prev, ok := (*m)[ev.Tunnel]
	if !ok && len(*m) >= in.limit {
		return false
	}
	switch {
	case ev.State == detect.Up && ok && prev.ev.State == detect.Down:
		if in.dip == nil {
			in.dip = make(map[string]queued)
		}
		in.dip[ev.Tunnel] = prev
	case ev.State == detect.Down:
		delete(in.dip, ev.Tunnel) // the latest state says it all again
	}
	in.seq++
	(*m)[ev.Tunnel] = queued{ev, in.seq}
	return true
}

// take empties the inbox. It returns the Downs that a later Up of the same
// tunnel overwrote (dips), then the other events, each in the order they
// were received.
func (in *inbox) take() (dips, evs []detect.Event) {
	in.mu.Lock()
	defer in.mu.Unlock()
	dips = sortedEvents(in.dip)
	evs = sortedEvents(in.state, in.rekey)
	clear(in.dip)
	clear(in.state)
	clear(in.rekey)
	return dips, evs
}

func sortedEvents(ms ...map[string]queued) []detect.Event {
	var qs []queued
	for _, m := range ms {
		for _, q := range m {
			qs = append(qs, q)
		}
	}
	slices.SortFunc(qs, func(a, b queued) int { return cmp.Compare(a.seq, b.seq) })
	evs := make([]detect.Event, len(qs))
	for i, q := range qs {
		evs[i] = q.ev
	}
	return evs
}

// Notify applies a tunnel event (it implements detect.Notifier). The
// tunnels of Config.Tunnels are redundant paths (see Config.Tunnels):
//
//   - Down: when the path is down (every tunnel of the pool is down, or
//     the only one seen), sever every connection (hung requests return now)
//     and gate new ones: a request that needs a connection waits up to
//     Config.DownWait for the path, then fails with ErrTunnelDown. One of
//     several redundant tunnels going down severs nothing.
//   - Up: when the path comes back, start a new generation, check one fresh
//     connection, release the waiters and reopen as many connections as
//     the pool held idle. If that check fails the gate stays shut until
//     the supervisor finds the path working.
//   - Rekey: Reset (no gate): old flows may be dead, nothing is known to
//     hang.
//
// Events are ordered by when the pool receives them. The sender's At only
// drops events older than Config.EventMaxAge, and a DOWN dated before the
// last UP the pool took for its tunnel (a replay: it cannot undo a later
// UP); an At in the future is taken as now. Invalid events, events for tunnels not in Config.Tunnels, and
// AllTunnels events with Config.RefuseAllTunnels are ignored and counted.
// Storms collapse: after a DOWN has severed, further toggles sever nothing
// until the tunnels have been quiet for Config.ResetCooldown; then one new
// generation, cutting only requests in flight since a DOWN of the storm,
// and the pool ends in the state of the last event. A DOWN inside the
// storm still holds the gate until its UP (unless it came within 50ms of
// the UP before it: toggles that fast are noise): new connections wait,
// and a conn lent out before it is pinged at its next borrow. Notify
// never blocks. After Close it does nothing.
func (p *Pool) Notify(ev detect.Event) { _ = p.Accept(ev) }

// Accept is Notify that says whether the pool took the event: nil, or an
// error matching detect.ErrIgnored that says why not (invalid, not one of
// Config.Tunnels, refused AllTunnels, older than Config.EventMaxAge, a DOWN
// older than the last UP taken for its tunnel, too many tunnels, closed).
// It implements detect.Acceptor, so a feed can answer its sender
// truthfully, and never blocks.
func (p *Pool) Accept(ev detect.Event) error {
	if p.closed.Load() {
		return p.ignore(ev, "the pool is closed")
	}
	if err := ev.Validate(); err != nil {
		return p.ignore(ev, err.Error())
	}
	if ev.Tunnel == detect.AllTunnels && p.cfg.RefuseAllTunnels {
		return p.ignore(ev, "events for every tunnel are refused (Config.RefuseAllTunnels)")
	}
	if ev.Tunnel != detect.AllTunnels && len(p.cfg.Tunnels) > 0 && !slices.Contains(p.cfg.Tunnels, ev.Tunnel) {
		return p.ignore(ev, "not one of this pool's tunnels")
	}
	now := p.cfg.now()
	switch {
	case ev.At.IsZero():
		ev.At = now
	case ev.At.After(now.Add(maxEventSkew)):
		p.stats.eventsFuture.Add(1)
		p.logLimited("future", "flapguard: tunnel event dated in the future; taken as received now", "tunnel", ev.Tunnel, "at", ev.At, "source", ev.Source)
		ev.At = now
	case p.cfg.EventMaxAge != off && now.Sub(ev.At) > p.cfg.EventMaxAge:
		return p.ignore(ev, "older than Config.EventMaxAge")
	}
	if reason := p.ups.stale(ev); reason != "" {
		return p.ignore(ev, reason)
	}
	if !p.inbox.put(ev) {
		return p.ignore(ev, "too many tunnels")
	}
	p.sup.kick()
	return nil
}

// upTimes remembers, per tunnel, the At of the last UP the pool took, so a
// DOWN dated before it is refused as stale: a replayed DOWN cannot undo a
// later UP. Bounded like the tunnel table.
type upTimes struct {
	mu sync.Mutex // protects m
	m  map[string]time.Time
}

// stale records an UP, and returns why a DOWN is stale ("" if it is not).
func (u *upTimes) stale(ev detect.Event) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch ev.State {
	case detect.Down:
		if at, ok := u.m[ev.Tunnel]; ok && ev.At.Before(at) {
			return "stale: a DOWN dated before the last UP of its tunnel (a replay?)"
		}
		if at, ok := u.m[detect.AllTunnels]; ok && ev.At.Before(at) {
			return "stale: a DOWN dated before the last UP for every tunnel (a replay?)"
		}
	case detect.Up:
		if u.m == nil {
			u.m = make(map[string]time.Time)
		}
		if _, ok := u.m[ev.Tunnel]; !ok && len(u.m) > maxLearnedTunnels {
			for id := range u.m { // forget one: bounded memory
				delete(u.m, id)
				break
			}
		}
		if ev.At.After(u.m[ev.Tunnel]) {
			u.m[ev.Tunnel] = ev.At
		}
	}
	return ""
}

var (
	_ detect.Notifier = (*Pool)(nil)
	_ detect.Acceptor = (*Pool)(nil)
)

func (p *Pool) ignore(ev detect.Event, reason string) error {
	p.stats.eventsIgnored.Add(1)
	p.emit(Event{Kind: EventTunnelIgnored, TunnelEvent: ev, Reason: reason})
	return fmt.Errorf("%w: %s", detect.ErrIgnored, reason)
}
