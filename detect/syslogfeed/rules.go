package syslogfeed

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedkit"
)

// Rule turns a log line that matches Pattern into an event.
//
// The tunnel id comes from the named capture group TunnelGroup (default
// "tunnel"). When the group is absent from the pattern or did not take part
// in the match, the id is Tunnel, whose zero value means detect.AllTunnels
// ("*");
// choose rules that name their tunnel whenever the device can log it.
//
// With TunnelMap set, the device's id (a YAMAHA tunnel number, a Cisco
// interface, a strongSwan connection name) is looked up in it and the mapped
// value becomes the event's tunnel; a line whose id is not in the map is
// ignored (ErrIgnored). A line without an id is looked up under "".
type Rule struct {
	// Name identifies the rule in Event.Source ("syslog:"+Name) and in logs,
	// e.g. "strongswan/child-up".
	Name string
	// Pattern is matched anywhere in the message (after the syslog header).
	Pattern *regexp.Regexp
	// State is the event a match produces. Zero means a matching line is
	// deliberately not an event: the line is ignored and later rules are
	// not tried (SA bookkeeping still happens).
	State detect.State
	// TunnelGroup names the capture group holding the device's tunnel id.
	// "" means "tunnel".
	TunnelGroup string
	// Tunnel is the id used when the group did not match. "" means
	// AllTunnels.
	Tunnel string
	// TunnelMap maps device ids to configured tunnel ids; nil = use the
	// device id as is. With a map, unmapped ids are ignored.
	TunnelMap map[string]string

	// SA, with the capture group "sa" (and "new" for SAReplace), makes the
	// rule track security-association instances per tunnel, so that a rekey
	// (a second SA established, then the old one closed) is told apart from
	// a tunnel going down. See SAAction.
	SA SAAction
	// OtherLive replaces State when, for SAOpen, another SA of the tunnel
	// was already live, or, for SAClose, another SA is still live after
	// this one closed. Zero means no event in that case.
	OtherLive detect.State
}

// SAAction is what a rule's match means for the tunnel's set of live
// security associations.
type SAAction int

const (
	// SANone: no bookkeeping.
	SANone SAAction = iota
	// SAOpen: the SA named by group "sa" is now live.
	SAOpen
	// SAClose: the SA named by group "sa" is gone.
	SAClose
	// SAReplace: the SA in group "sa" was rekeyed into the SA in group "new".
	SAReplace
)

// Errors returned (wrapped) by ParseLine.
var (
	// ErrIgnored: the line was recognised but deliberately produces no
	// event (unmapped tunnel, an SA closing while a newer one is live).
	ErrIgnored = errors.New("syslogfeed: line ignored")
	// ErrMalformed: the line is not a well-formed syslog message or yields
	// an invalid event.
	ErrMalformed = errors.New("syslogfeed: malformed line")
	// ErrLineTooLong: the line is longer than the parser's limit.
	ErrLineTooLong = errors.New("syslogfeed: line too long")
)

// DefaultMaxLine is the longest line ParseLine accepts by default.
const DefaultMaxLine = 8 << 10

// SA bookkeeping bounds: a flood of distinct names or SA ids evicts old
// entries instead of growing memory.
const (
	maxTrackedTunnels = 4096
	maxSAsPerTunnel   = 16
)

type compiledRule struct {
	Rule
	tunnelIdx, saIdx, newIdx int
}

// Parser turns log lines into events with a list of rules; the first rule
// whose pattern matches decides. It is safe for concurrent use.
//
// ParseLine does no I/O. Its only state is the SA bookkeeping of rules with
// an SAAction (bounded: at most 4096 tunnels of 16 SAs each); every other
// rule is a pure function of the line.
type Parser struct {
	rules   []compiledRule
	maxLine int

	mu sync.Mutex // protects following fields
	sa map[string][]string
}

// NewParser checks rules and returns a Parser. A rule needs a Name and a
// Pattern; its TunnelGroup, "sa" and "new" groups must exist where used.
// maxLine 0 means DefaultMaxLine; a negative maxLine is an error.
func NewParser(rules []Rule, maxLine int) (*Parser, error) {
	if maxLine < 0 {
		return nil, errors.New("syslogfeed: NewParser: maxLine is negative")
	}
	if len(rules) == 0 {
		return nil, errors.New("syslogfeed: NewParser: no rules (use a pack such as syslogfeed.StrongSwan().Rules)")
	}
	if maxLine == 0 {
		maxLine = DefaultMaxLine
	}
	p := &Parser{maxLine: maxLine, sa: make(map[string][]string)}
	for i, r := range rules {
		if r.Name == "" {
			return nil, fmt.Errorf("syslogfeed: rule %d: Name is empty", i)
		}
		if r.Pattern == nil {
			return nil, fmt.Errorf("syslogfeed: rule %q: Pattern is nil", r.Name)
		}
		if r.State != 0 && !validState(r.State) {
			return nil, fmt.Errorf("syslogfeed: rule %q: invalid State %d", r.Name, int(r.State))
		}
		if r.OtherLive != 0 && !validState(r.OtherLive) {
			return nil, fmt.Errorf("syslogfeed: rule %q: invalid OtherLive %d", r.Name, int(r.OtherLive))
		}
		if err := (detect.Event{Tunnel: cmp.Or(r.Tunnel, detect.AllTunnels), State: detect.Up}).Validate(); err != nil {
			return nil, fmt.Errorf("syslogfeed: rule %q: Tunnel: %w", r.Name, err)
		}
		group := r.TunnelGroup
		if group == "" {
			group = "tunnel"
		}
		c := compiledRule{Rule: r, tunnelIdx: r.Pattern.SubexpIndex(group), saIdx: -1, newIdx: -1}
		if r.TunnelGroup != "" && c.tunnelIdx < 0 {
			return nil, fmt.Errorf("syslogfeed: rule %q: pattern has no group %q", r.Name, r.TunnelGroup)
		}
		switch r.SA {
		case SANone:
		case SAOpen, SAClose, SAReplace:
			if c.saIdx = r.Pattern.SubexpIndex("sa"); c.saIdx < 0 {
				return nil, fmt.Errorf("syslogfeed: rule %q: SA tracking needs a group named \"sa\"", r.Name)
			}
			if r.SA == SAReplace {
				if c.newIdx = r.Pattern.SubexpIndex("new"); c.newIdx < 0 {
					return nil, fmt.Errorf("syslogfeed: rule %q: SAReplace needs a group named \"new\"", r.Name)
				}
			}
		default:
			return nil, fmt.Errorf("syslogfeed: rule %q: unknown SAAction %d", r.Name, int(r.SA))
		}
		p.rules = append(p.rules, c)
	}
	return p, nil
}

// ParseLine parses one line (an RFC 3164 or RFC 5424 syslog message, or a
// bare log line; a trailing newline is ignored).
//
// It returns (ev, true, nil) for an event, which always passes
// ev.Validate(); ev.At is zero (the caller stamps the receive time if it
// wants one: device clocks are often wrong) and ev.Source is
// "syslog:"+rule.Name. It returns (Event{}, false, nil) when no rule
// matches, and (Event{}, false, err) when a rule matched but the line is
// ignored (errors.Is(err, ErrIgnored)) or the line is malformed or too long
// (ErrMalformed, ErrLineTooLong).
func (p *Parser) ParseLine(line []byte) (detect.Event, bool, error) {
	line = trimEOL(line)
	if len(line) > p.maxLine {
		return detect.Event{}, false, fmt.Errorf("%w: %d bytes, limit %d", ErrLineTooLong, len(line), p.maxLine)
	}
	msg, err := syslogMessage(line)
	if err != nil {
		return detect.Event{}, false, err
	}
	if len(msg) == 0 {
		return detect.Event{}, false, nil
	}
	for i := range p.rules {
		r := &p.rules[i]
		m := r.Pattern.FindSubmatchIndex(msg)
		if m == nil {
			continue
		}
		return p.apply(r, msg, m)
	}
	return detect.Event{}, false, nil
}

func group(msg []byte, m []int, idx int) (string, bool) {
	if idx < 0 || m[2*idx] < 0 {
		return "", false
	}
	return string(msg[m[2*idx]:m[2*idx+1]]), true
}

func (p *Parser) apply(r *compiledRule, msg []byte, m []int) (detect.Event, bool, error) {
	id, ok := group(msg, m, r.tunnelIdx)
	id = strings.TrimSpace(id)
	if !ok || id == "" {
		id = r.Tunnel
	}
	if !utf8.ValidString(id) {
		return detect.Event{}, false, fmt.Errorf("%w: rule %s: tunnel id is not UTF-8", ErrMalformed, r.Name)
	}
	if r.TunnelMap == nil && id == "" {
		id = detect.AllTunnels
	}
	if r.TunnelMap != nil {
		mapped, ok := r.TunnelMap[id]
		if !ok {
			return detect.Event{}, false, fmt.Errorf("%w: rule %s: tunnel %q is not in TunnelMap", ErrIgnored, r.Name, feedkit.Truncate(id, 64))
		}
		id = mapped
	}
	state := r.State
	if r.SA != SANone {
		sa, _ := group(msg, m, r.saIdx)
		nw, _ := group(msg, m, r.newIdx)
		state = p.trackSA(r, id, sa, nw)
	}
	if state == 0 {
		return detect.Event{}, false, nil
	}
	if state == detect.Down {
		p.forget(id)
	}
	ev := detect.Event{Tunnel: id, State: state, Source: "syslog:" + r.Name}
	if err := ev.Validate(); err != nil {
		return detect.Event{}, false, fmt.Errorf("%w: rule %s: %w", ErrMalformed, r.Name, err)
	}
	return ev, true, nil
}

// trackSA updates the tunnel's live SAs and returns the state to report.
func (p *Parser) trackSA(r *compiledRule, tunnel, sa, nw string) detect.State {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := p.sa[tunnel]
	switch r.SA {
	case SAOpen:
		others := len(without(live, sa)) > 0
		p.setLocked(tunnel, appendSA(without(live, sa), sa))
		if others {
			return r.OtherLive
		}
		return r.State
	case SAClose:
		rest := without(live, sa)
		p.setLocked(tunnel, rest)
		if len(rest) > 0 {
			return r.OtherLive
		}
		return r.State
	case SAReplace:
		p.setLocked(tunnel, appendSA(without(without(live, sa), nw), nw))
		return r.State
	}
	return r.State
}

func (p *Parser) setLocked(tunnel string, live []string) {
	if len(live) == 0 {
		delete(p.sa, tunnel)
		return
	}
	if _, ok := p.sa[tunnel]; !ok && len(p.sa) >= maxTrackedTunnels {
		// Forgetting makes later decisions conservative (a close reads as
		// Down, an open as Up), never silent.
		for k := range p.sa {
			delete(p.sa, k)
			break
		}
	}
	p.sa[tunnel] = live
}

// forget drops the SA bookkeeping of a tunnel that went down ("" = all):
// after a down, the next established SA must read as Up, not as a rekey.
func (p *Parser) forget(tunnel string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if tunnel == "" {
		clear(p.sa)
		return
	}
	delete(p.sa, tunnel)
}

func without(live []string, sa string) []string {
	out := make([]string, 0, len(live))
	for _, s := range live {
		if s != sa {
			out = append(out, s)
		}
	}
	return out
}

func appendSA(live []string, sa string) []string {
	if len(live) >= maxSAsPerTunnel {
		live = live[1:]
	}
	return append(live, sa)
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return b
}

// validState reports whether st is one of detect's states.
func validState(st detect.State) bool {
	_, err := st.MarshalText()
	return err == nil
}
