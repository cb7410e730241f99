//go:build linux

package lab

import (
	"fmt"
	"net/netip"
	"strings"
)

// Flow is one TCP connection between the app and db namespaces, named from
// the app side.
type Flow struct {
	App netip.AddrPort // in AppNet
	DB  netip.AddrPort // in DBNet
}

func (f Flow) String() string { return f.App.String() + "<->" + f.DB.String() }

// Flows returns the TCP flows between app and db that either side knows of
// now, in any state but LISTEN, without duplicates.
func (l *Lab) Flows() ([]Flow, error) {
	return l.flows()
}

func (l *Lab) flows() ([]Flow, error) {
	var all []Flow
	for _, ns := range []string{l.app.name, l.db.name} {
		out, err := l.exec(ns, "", l.tl.ss, "-Htna")
		if err != nil {
			return nil, err
		}
		fs, err := parseSS(out, l.appNet, l.dbNet)
		if err != nil {
			return nil, err
		}
		all = mergeFlows(all, fs)
	}
	return all, nil
}

// parseSS reads `ss -Htna` output ("State Recv-Q Send-Q Local Peer" per
// line) and keeps the TCP flows with one end in appNet and the other in
// dbNet, oriented app first.
func parseSS(out string, appNet, dbNet netip.Prefix) ([]Flow, error) {
	var flows []Flow
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("lab: unexpected ss line %q", line)
		}
		if f[0] == "LISTEN" {
			continue
		}
		local, err1 := netip.ParseAddrPort(f[3])
		peer, err2 := netip.ParseAddrPort(f[4])
		if err1 != nil || err2 != nil {
			continue // IPv6 or wildcard forms: never a lab flow
		}
		local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
		peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
		switch {
		case appNet.Contains(local.Addr()) && dbNet.Contains(peer.Addr()):
			flows = append(flows, Flow{App: local, DB: peer})
		case dbNet.Contains(local.Addr()) && appNet.Contains(peer.Addr()):
			flows = append(flows, Flow{App: peer, DB: local})
		}
	}
	return flows, nil
}

// mergeFlows appends to a the flows of b it lacks.
func mergeFlows(a, b []Flow) []Flow {
	seen := make(map[Flow]bool, len(a))
	for _, f := range a {
		seen[f] = true
	}
	for _, f := range b {
		if !seen[f] {
			seen[f] = true
			a = append(a, f)
		}
	}
	return a
}
