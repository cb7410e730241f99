package syslogfeed

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/flapguard/flapguard/detect"
)

// Pack is a named set of rules for one kind of device. Use a pack's Rules
// in Config.Rules or NewParser; combine packs by appending their
// rules (the first matching rule wins, and packs do not overlap).
type Pack struct {
	Name  string
	Rules []Rule
}

// WithTunnelMap returns a copy of p whose every rule maps device tunnel ids
// through m; lines about unmapped tunnels are then ignored. m is copied.
func (p Pack) WithTunnelMap(m map[string]string) Pack {
	out := Pack{Name: p.Name, Rules: make([]Rule, len(p.Rules))}
	cp := maps.Clone(m)
	if cp == nil {
		cp = map[string]string{}
	}
	for i, r := range p.Rules {
		r.TunnelMap = cp
		out.Rules[i] = r
	}
	return out
}

// Packs returns every built-in pack.
//
// Each pack's patterns are compiled once, on the first call of its
// constructor (YamahaRTX, StrongSwan…), never when the package is loaded:
// a program that links syslogfeed but asks for no pack compiles none.
func Packs() []Pack {
	return []Pack{YamahaRTX(), StrongSwan(), Libreswan(), CiscoIOS(), Juniper(), FortiGate()}
}

// PackByName returns the built-in pack called name ("yamaha", "strongswan",
// "libreswan", "cisco", "juniper", "fortigate"; case-insensitive).
func PackByName(name string) (Pack, error) {
	var names []string
	for _, p := range Packs() {
		if strings.EqualFold(p.Name, name) {
			return p, nil
		}
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return Pack{}, fmt.Errorf("syslogfeed: no rule pack %q (have %s)", name, strings.Join(names, ", "))
}

// YamahaRTX matches YAMAHA RTX routers' "IP Tunnel[N] Up|Down", with or
// without the "YYYY/MM/DD HH:MM:SS: " prefix of `show log`. The tunnel id is
// the tunnel number N. That message fires for every tunnel interface, not
// only IPsec ones, so use WithTunnelMap to name the tunnels you care about.
// "[IKE] …", "[L2TP] …", "PPPOE[..] …" and "same message repeated N times"
// match nothing.
func YamahaRTX() Pack {
	return Pack{Name: "yamaha", Rules: slices.Clone(yamahaRTXRules())}
}

// yamahaRTXRules is compiled on the first call of the pack's constructor.
var yamahaRTXRules = sync.OnceValue(func() []Rule {
	return []Rule{
		{Name: "yamaha/tunnel-up", Pattern: regexp.MustCompile(`(?:^|[\s:])IP Tunnel\[(?P<tunnel>\d{1,5})\] Up\s*$`), State: detect.Up},
		{Name: "yamaha/tunnel-down", Pattern: regexp.MustCompile(`(?:^|[\s:])IP Tunnel\[(?P<tunnel>\d{1,5})\] Down\s*$`), State: detect.Down},
	}
})

// StrongSwan matches charon's log. The tunnel id is the CHILD_SA name (the
// "net" of "net{3}"), or, for "giving up after N retransmits", the
// connection name of the "<name|n>" prefix charon adds with ike_name=yes
// (without it the line has no name and means every tunnel: map "" or enable
// ike_name).
//
// Rekey versus down: charon logs the same "closing CHILD_SA name{n}" when
// the tunnel goes away and when the old SA is retired after a rekey, so the
// rules track the live CHILD_SA ids of each tunnel (SAOpen/SAClose):
//   - "CHILD_SA name{n} established" is Up when no other SA of the tunnel
//     is live, else Rekey (the new SA of a rekey appears before the old one
//     closes, on the initiator and on the responder);
//   - "inbound/outbound CHILD_SA name{n} established" (strongSwan 6's
//     multi-step rekey) only records n as live;
//   - "rekeyed CHILD_SA name{old} … with name{new}" is Rekey;
//   - "closing [expired] CHILD_SA name{n}" is Down only when it closes the
//     tunnel's last live SA; while a newer SA is live it is no event;
//   - "giving up after N retransmits" is Down; "scheduling rekeying",
//     "retransmit N of request", DELETE payload lines and CHILD_REKEY
//     collision notes are no events.
//
// A Down forgets the tunnel's SAs, so the next establish reads as Up. After
// a restart of the receiver the bookkeeping is empty: a rekey's first close
// then reads as Down (conservative).
func StrongSwan() Pack {
	return Pack{Name: "strongswan", Rules: slices.Clone(strongSwanRules())}
}

// strongSwanRules is compiled on the first call of the pack's constructor.
var strongSwanRules = sync.OnceValue(func() []Rule {
	return []Rule{
		{Name: "strongswan/child-up", Pattern: regexp.MustCompile(swanPrefix + `CHILD_SA ` + swanChild + ` established`), State: detect.Up, SA: SAOpen, OtherLive: detect.Rekey},
		{Name: "strongswan/child-half-up", Pattern: regexp.MustCompile(swanPrefix + `(?:inbound|outbound) CHILD_SA ` + swanChild + ` established`), SA: SAOpen},
		{Name: "strongswan/child-rekeyed", Pattern: regexp.MustCompile(swanPrefix + `rekeyed CHILD_SA ` + swanChild + ` .*?with [^\s{}]+\{(?P<new>\d+)\}`), State: detect.Rekey, SA: SAReplace},
		{Name: "strongswan/child-down", Pattern: regexp.MustCompile(swanPrefix + `closing (?:expired )?CHILD_SA ` + swanChild), State: detect.Down, SA: SAClose},
		{Name: "strongswan/gave-up", Pattern: regexp.MustCompile(`\[IKE\] (?:<(?P<tunnel>[^<>|\s]*)\|\d+> )?giving up after \d+ retransmits`), State: detect.Down},
	}
})

const (
	swanPrefix = `\[IKE\] (?:<[^<>|\s]*\|\d+> )?`
	swanChild  = `(?P<tunnel>[^\s{}]+)\{(?P<sa>\d+)\}`
)

// Libreswan matches pluto's log. The tunnel id is the quoted connection
// name ("Tunnel2"); the SA instance is the state serial (#2).
// "IPsec SA established" (IKEv1 and older IKEv2 wording) and
// "initiator|responder established Child SA" are Up, or Rekey when an SA of
// the same connection is already live (pluto logs no close line for the
// replaced SA, so a second establish is a rekey); "rekeyed Child SA #n" is
// Rekey; "DPD: No response from peer - declaring peer dead" is Down (with no
// quoted name it means every tunnel).
func Libreswan() Pack {
	return Pack{Name: "libreswan", Rules: slices.Clone(libreswanRules())}
}

// libreswanRules is compiled on the first call of the pack's constructor.
var libreswanRules = sync.OnceValue(func() []Rule {
	return []Rule{
		{Name: "libreswan/child-rekeyed", Pattern: regexp.MustCompile(libreConn + `(?P<new>\d+): (?:initiator|responder) rekeyed Child SA #(?P<sa>\d+)`), State: detect.Rekey, SA: SAReplace},
		{Name: "libreswan/sa-up", Pattern: regexp.MustCompile(libreConn + `(?P<sa>\d+): .*\bIPsec SA established\b`), State: detect.Up, SA: SAOpen, OtherLive: detect.Rekey},
		{Name: "libreswan/child-up", Pattern: regexp.MustCompile(libreConn + `(?P<sa>\d+): (?:initiator|responder) established Child SA\b`), State: detect.Up, SA: SAOpen, OtherLive: detect.Rekey},
		{Name: "libreswan/dpd-dead", Pattern: regexp.MustCompile(`(?:"(?P<tunnel>[^"]{1,256})"(?:\[\d+\])?[^#"]*#\d+: )?DPD: No response from peer - declaring peer dead`), State: detect.Down},
	}
})

const libreConn = `"(?P<tunnel>[^"]{1,256})"(?:\[\d+\])?[^#"]*#`

// CiscoIOS matches "%LINEPROTO-5-UPDOWN: Line protocol on Interface
// TunnelN, changed state to up|down". The tunnel id is the interface name
// ("Tunnel0"); other interfaces match nothing.
func CiscoIOS() Pack {
	return Pack{Name: "cisco", Rules: slices.Clone(ciscoIOSRules())}
}

// ciscoIOSRules is compiled on the first call of the pack's constructor.
var ciscoIOSRules = sync.OnceValue(func() []Rule {
	return []Rule{
		{Name: "cisco/lineproto-up", Pattern: regexp.MustCompile(`%LINEPROTO-5-UPDOWN: Line protocol on Interface (?P<tunnel>Tunnel\d+), changed state to up\b`), State: detect.Up},
		{Name: "cisco/lineproto-down", Pattern: regexp.MustCompile(`%LINEPROTO-5-UPDOWN: Line protocol on Interface (?P<tunnel>Tunnel\d+), changed state to down\b`), State: detect.Down},
	}
})

// Juniper matches SRX kmd's KMD_VPN_UP_ALARM_USER / KMD_VPN_DOWN_ALARM_USER.
// The tunnel id is the VPN name.
func Juniper() Pack {
	return Pack{Name: "juniper", Rules: slices.Clone(juniperRules())}
}

// juniperRules is compiled on the first call of the pack's constructor.
var juniperRules = sync.OnceValue(func() []Rule {
	return []Rule{
		{Name: "juniper/vpn-up", Pattern: regexp.MustCompile(`KMD_VPN_UP_ALARM_USER: VPN (?P<tunnel>\S{1,256}) from \S+ is up\b`), State: detect.Up},
		{Name: "juniper/vpn-down", Pattern: regexp.MustCompile(`KMD_VPN_DOWN_ALARM_USER: VPN (?P<tunnel>\S{1,256}) from \S+ is down\b`), State: detect.Down},
	}
})

// FortiGate matches FortiOS event logs: logid 0101037138 ("IPsec connection
// status change") with action="tunnel-up" or "tunnel-down", and 0101037136
// ("IPsec DPD failed") as Down. The tunnel id is the vpntunnel field.
func FortiGate() Pack {
	return Pack{Name: "fortigate", Rules: slices.Clone(fortiGateRules())}
}

// fortiGateRules is compiled on the first call of the pack's constructor.
var fortiGateRules = sync.OnceValue(func() []Rule {
	return []Rule{
		{Name: "fortigate/tunnel-up", Pattern: regexp.MustCompile(`\blogid="?0101037138"?\s.*\baction="tunnel-up"` + fortiTunnel), State: detect.Up},
		{Name: "fortigate/tunnel-down", Pattern: regexp.MustCompile(`\blogid="?0101037138"?\s.*\baction="tunnel-down"` + fortiTunnel), State: detect.Down},
		{Name: "fortigate/dpd-failed", Pattern: regexp.MustCompile(`\blogid="?0101037136"?\s` + fortiTunnel), State: detect.Down},
	}
})

const fortiTunnel = `.*\bvpntunnel="(?P<tunnel>[^"]{1,256})"`
