//go:build linux

package lab

import (
	"fmt"
	"strings"
	"time"
)

// The nftables objects in the vpn namespace.
const (
	nftTable = "inet fglab"
	nftChain = "faults" // forward hook: every packet between app and db
	nftSet   = "dead"   // 4-tuples of flows killed by a rekey
)

// FaultKind names a fault.
type FaultKind int

const (
	// FaultBlackhole drops every forwarded packet (Blackhole, Flap).
	FaultBlackhole FaultKind = iota + 1
	// FaultRekey is a rekey's blackhole phase (BeginRekey..EndRekey); the
	// flows it killed stay dead after it ends.
	FaultRekey
	// FaultReset answers every forwarded TCP packet with a RST.
	FaultReset
	// FaultAsymmetric drops one direction only; Detail says which.
	FaultAsymmetric
)

func (k FaultKind) String() string {
	switch k {
	case FaultBlackhole:
		return "blackhole"
	case FaultRekey:
		return "rekey"
	case FaultReset:
		return "reset"
	case FaultAsymmetric:
		return "asymmetric"
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// Direction selects the packets Asymmetric drops.
type Direction int

const (
	// NoDirection lifts an asymmetric fault.
	NoDirection Direction = iota
	// AppToDB drops packets from app to db (requests, and ACKs of replies).
	AppToDB
	// DBToApp drops packets from db to app (replies, and ACKs of requests).
	DBToApp
)

func (d Direction) String() string {
	switch d {
	case NoDirection:
		return "none"
	case AppToDB:
		return "app->db"
	case DBToApp:
		return "db->app"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// FaultWindow is when one fault was in force. End is zero while it still is.
type FaultWindow struct {
	Kind   FaultKind
	Detail string
	Start  time.Time
	End    time.Time
}

// faultState is what the forward chain currently enforces.
type faultState struct {
	blackhole bool
	rekey     bool // blackhole is on because of BeginRekey
	reset     bool
	asym      Direction
	dead      []Flow
}

// Faults returns a copy of every fault window so far, in start order.
func (l *Lab) Faults() []FaultWindow {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	return append([]FaultWindow(nil), l.windows...)
}

// Blackhole drops every packet between app and db until Restore (or the end
// of a Flap). Established flows survive it by retransmission once lifted.
func (l *Lab) Blackhole() error {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	return l.setBlackholeLocked(true, FaultBlackhole)
}

// Restore lifts the blackhole, reset and asymmetric faults. Flows killed by
// a rekey stay dead (see ReviveFlows): that is the point of a rekey.
func (l *Lab) Restore() error {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	next := l.faults
	next.blackhole, next.rekey, next.reset, next.asym = false, false, false, NoDirection
	return l.applyLocked(next, "")
}

// Flap blackholes the path for d, then lifts the blackhole (only).
func (l *Lab) Flap(d time.Duration) error {
	if err := l.Blackhole(); err != nil {
		return err
	}
	time.Sleep(d)
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	return l.setBlackholeLocked(false, FaultBlackhole)
}

// RekeyBlackhole is BeginRekey, d of blackhole, then EndRekey.
func (l *Lab) RekeyBlackhole(d time.Duration) error {
	if _, err := l.BeginRekey(); err != nil {
		return err
	}
	time.Sleep(d)
	return l.EndRekey()
}

// BeginRekey blackholes the path and marks every TCP flow between app and db
// that exists now as dead forever: after EndRekey new flows pass while those
// stay silently dropped in both directions, like sessions pinned to an old
// IPsec SA. It returns the flows it killed.
//
// The blackhole goes up first, so no flow can be established between the
// snapshot and the kill. The snapshot is `ss -Htna` in both the app and db
// namespaces (a flow one side already forgot is still dead for the other).
// Caveat: a new flow that reuses a dead flow's exact 4-tuple is dropped too;
// Linux only reuses a local port once the old socket is gone entirely.
func (l *Lab) BeginRekey() ([]Flow, error) {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	if err := l.setBlackholeLocked(true, FaultRekey); err != nil {
		return nil, err
	}
	flows, err := l.flows()
	if err != nil {
		return nil, err
	}
	next := l.faults
	next.rekey = true
	next.dead = mergeFlows(next.dead, flows)
	if err := l.applyLocked(next, addElements(flows)); err != nil {
		return nil, err
	}
	for i := len(l.windows) - 1; i >= 0; i-- {
		if w := &l.windows[i]; w.Kind == FaultRekey && w.End.IsZero() {
			w.Detail = fmt.Sprintf("%d flows killed", len(flows))
			break
		}
	}
	return flows, nil
}

// EndRekey lifts the rekey's blackhole: new flows pass again, the flows
// BeginRekey killed stay dead.
func (l *Lab) EndRekey() error {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	return l.setBlackholeLocked(false, FaultRekey)
}

// DeadFlows returns the flows rekeys have killed so far.
func (l *Lab) DeadFlows() []Flow {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	return append([]Flow(nil), l.faults.dead...)
}

// ReviveFlows forgets every flow a rekey killed, letting them pass again.
func (l *Lab) ReviveFlows() error {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	next := l.faults
	next.dead = nil
	return l.applyLocked(next, "")
}

// Reset makes the vpn answer every TCP packet between app and db with a RST
// (new connects get ECONNREFUSED, established flows ECONNRESET), or stops.
func (l *Lab) Reset(on bool) error {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	next := l.faults
	next.reset = on
	return l.applyLocked(next, "")
}

// Asymmetric drops only the packets going in dir; NoDirection lifts it.
func (l *Lab) Asymmetric(dir Direction) error {
	if dir < NoDirection || dir > DBToApp {
		return fmt.Errorf("lab: unknown direction %d", int(dir))
	}
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	next := l.faults
	next.asym = dir
	return l.applyLocked(next, "")
}

func (l *Lab) setBlackholeLocked(on bool, kind FaultKind) error {
	next := l.faults
	next.blackhole = on
	if on && kind == FaultRekey {
		next.rekey = true
	}
	if !on {
		next.rekey = false
	}
	return l.applyLocked(next, "")
}

// initFaults creates the table, the dead-flow set and the empty chain.
func (l *Lab) initFaults() error {
	script := fmt.Sprintf("table %s {\n"+
		"\tset %s { type ipv4_addr . inet_service . ipv4_addr . inet_service; }\n"+
		"\tchain %s { type filter hook forward priority 0; policy accept; }\n}\n",
		nftTable, nftSet, nftChain)
	if _, err := l.exec(l.vpn.name, script, l.tl.nft, "-f", "-"); err != nil {
		return err
	}
	return l.applyLocked(faultState{}, "")
}

// applyLocked makes next the enforced state in one nft transaction (extra
// commands first, then the chain rebuilt from scratch) and records the
// windows that opened or closed. On error nothing changed.
func (l *Lab) applyLocked(next faultState, extra string) error {
	if _, err := l.exec(l.vpn.name, l.ruleset(next, extra), l.tl.nft, "-f", "-"); err != nil {
		return err
	}
	now := time.Now()
	prev := l.faults
	l.faults = next
	l.window(now, FaultRekey, prev.blackhole && prev.rekey, next.blackhole && next.rekey, "")
	l.window(now, FaultBlackhole, prev.blackhole && !prev.rekey, next.blackhole && !next.rekey, "")
	l.window(now, FaultReset, prev.reset, next.reset, "")
	if prev.asym != next.asym {
		l.window(now, FaultAsymmetric, prev.asym != NoDirection, false, "")
		l.window(now, FaultAsymmetric, false, next.asym != NoDirection, next.asym.String())
	}
	return nil
}

// window opens or closes a window of kind when its state flips.
func (l *Lab) window(now time.Time, kind FaultKind, was, is bool, detail string) {
	switch {
	case !was && is:
		l.windows = append(l.windows, FaultWindow{Kind: kind, Detail: detail, Start: now})
	case was && !is:
		for i := len(l.windows) - 1; i >= 0; i-- {
			if w := &l.windows[i]; w.Kind == kind && w.End.IsZero() {
				w.End = now
				return
			}
		}
	}
}

// ruleset renders state as an nft script. The dead-flow rules come first so
// a dead flow stays silent even under Reset (no RST may reveal it).
func (l *Lab) ruleset(s faultState, extra string) string {
	var b strings.Builder
	b.WriteString(extra)
	if s.dead == nil {
		fmt.Fprintf(&b, "flush set %s %s\n", nftTable, nftSet)
	}
	fmt.Fprintf(&b, "flush chain %s %s\n", nftTable, nftChain)
	rule := func(r string) { fmt.Fprintf(&b, "add rule %s %s %s\n", nftTable, nftChain, r) }
	rule(fmt.Sprintf("ip saddr . tcp sport . ip daddr . tcp dport @%s drop", nftSet))
	rule(fmt.Sprintf("ip daddr . tcp dport . ip saddr . tcp sport @%s drop", nftSet))
	if s.blackhole {
		rule("drop")
	}
	switch s.asym {
	case AppToDB:
		rule(fmt.Sprintf("iifname %q drop", l.ifVPNApp))
	case DBToApp:
		rule(fmt.Sprintf("iifname %q drop", l.ifVPNDB))
	}
	if s.reset {
		rule("meta l4proto tcp reject with tcp reset")
	}
	return b.String()
}

// addElements renders the nft command adding flows to the dead set.
func addElements(flows []Flow) string {
	if len(flows) == 0 {
		return ""
	}
	elems := make([]string, len(flows))
	for i, f := range flows {
		elems[i] = fmt.Sprintf("%s . %d . %s . %d", f.App.Addr(), f.App.Port(), f.DB.Addr(), f.DB.Port())
	}
	return fmt.Sprintf("add element %s %s { %s }\n", nftTable, nftSet, strings.Join(elems, ", "))
}
