package syslogfeed

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flapguard/flapguard/detect"
)

// fixtureLine is one "EXPECT | LINE" entry of testdata/<vendor>.txt.
type fixtureLine struct {
	pos    string // file:line
	expect string // "down T", "up T", "rekey T", "none", "ignored", "malformed"
	line   string
	parser *Parser // the parser in effect (after @pack/@map directives)
}

// loadFixtures reads every vendor fixture file and builds the parsers its
// directives ask for.
func loadFixtures(t testing.TB) []fixtureLine {
	t.Helper()
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var out []fixtureLine
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		packs := []string{strings.TrimSuffix(filepath.Base(file), ".txt")}
		var tmap map[string]string
		var p *Parser
		build := func() {
			var rules []Rule
			for _, name := range packs {
				pk, err := PackByName(name)
				if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				if tmap != nil {
					pk = pk.WithTunnelMap(tmap)
				}
				rules = append(rules, pk.Rules...)
			}
			if p, err = NewParser(rules, 0); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
		}
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			n++
			text := sc.Text()
			switch {
			case strings.TrimSpace(text) == "", strings.HasPrefix(text, "#"):
				continue
			case strings.HasPrefix(text, "@pack "):
				packs = strings.Split(strings.TrimSpace(text[len("@pack "):]), ",")
				p = nil
				continue
			case strings.HasPrefix(text, "@map "):
				tmap = map[string]string{}
				for kv := range strings.SplitSeq(strings.TrimSpace(text[len("@map "):]), ",") {
					k, v, ok := strings.Cut(kv, "=")
					if !ok {
						t.Fatalf("%s:%d: bad @map entry %q", file, n, kv)
					}
					tmap[k] = v
				}
				p = nil
				continue
			}
			expect, line, ok := strings.Cut(text, " | ")
			if !ok {
				t.Fatalf("%s:%d: want \"EXPECT | LINE\", got %q", file, n, text)
			}
			if p == nil {
				build()
			}
			out = append(out, fixtureLine{pos: fmt.Sprintf("%s:%d", file, n), expect: expect, line: line, parser: p})
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// outcome renders a ParseLine result in the fixture's EXPECT syntax.
func outcome(ev detect.Event, ok bool, err error) string {
	switch {
	case ok && err != nil:
		return "BUG: ok with error " + err.Error()
	case ok:
		t := ev.Tunnel
		if t == "" {
			t = "*"
		}
		return ev.State.String() + " " + t
	case errors.Is(err, ErrIgnored):
		return "ignored"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case err != nil:
		return "error " + err.Error()
	}
	return "none"
}

func TestRulePackFixtures(t *testing.T) {
	lines := loadFixtures(t)
	seen := map[string]int{}
	for _, fl := range lines {
		ev, ok, err := fl.parser.ParseLine([]byte(fl.line))
		if got := outcome(ev, ok, err); got != fl.expect {
			t.Errorf("%s: %q\n got  %s (err %v)\n want %s", fl.pos, fl.line, got, err, fl.expect)
		}
		if ok {
			if err := ev.Validate(); err != nil {
				t.Errorf("%s: event fails Validate: %v", fl.pos, err)
			}
			if !strings.HasPrefix(ev.Source, "syslog:") || !ev.At.IsZero() {
				t.Errorf("%s: Source %q At %v, want syslog:<rule> and zero At", fl.pos, ev.Source, ev.At)
			}
		}
		seen[strings.Fields(fl.expect)[0]]++
	}
	// The fixtures must exercise every outcome, including non-events.
	for _, k := range []string{"down", "up", "rekey", "none", "ignored", "malformed"} {
		if seen[k] == 0 {
			t.Errorf("no fixture line expects %q", k)
		}
	}
	t.Logf("%d fixture lines: %v", len(lines), seen)
}

func TestEveryPackHasFixtures(t *testing.T) {
	for _, p := range Packs() {
		if _, err := os.Stat(filepath.Join("testdata", p.Name+".txt")); err != nil {
			t.Errorf("pack %s: %v", p.Name, err)
		}
	}
}

func TestNewParserRejectsBadRules(t *testing.T) {
	re := regexp.MustCompile(`x(?P<tunnel>\d)`)
	cases := []struct {
		name string
		r    Rule
		want string
	}{
		{"no name", Rule{Pattern: re, State: detect.Down}, "Name is empty"},
		{"no pattern", Rule{Name: "a", State: detect.Down}, "Pattern is nil"},
		{"bad state", Rule{Name: "a", Pattern: re, State: 9}, "invalid State"},
		{"bad otherlive", Rule{Name: "a", Pattern: re, State: detect.Up, OtherLive: -1}, "invalid OtherLive"},
		{"missing group", Rule{Name: "a", Pattern: re, State: detect.Down, TunnelGroup: "vpn"}, `no group "vpn"`},
		{"sa without group", Rule{Name: "a", Pattern: re, State: detect.Down, SA: SAClose}, `group named "sa"`},
		{"replace without new", Rule{Name: "a", Pattern: regexp.MustCompile(`(?P<sa>\d)`), State: detect.Rekey, SA: SAReplace}, `"new"`},
		{"bad sa action", Rule{Name: "a", Pattern: re, State: detect.Down, SA: 7}, "unknown SAAction"},
		{"control char tunnel", Rule{Name: "a", Pattern: re, State: detect.Down, Tunnel: "a\x00"}, "control character"},
	}
	for _, c := range cases {
		_, err := NewParser([]Rule{c.r}, 0)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if _, err := NewParser(nil, 0); err == nil {
		t.Error("NewParser(nil) succeeded")
	}
}

func TestUserRuleWithFixedTunnelAndGroup(t *testing.T) {
	p, err := NewParser([]Rule{
		{Name: "mine/down", Pattern: regexp.MustCompile(`link (?P<vpn>\w+)? ?lost`), TunnelGroup: "vpn", Tunnel: "default", State: detect.Down},
		{Name: "mine/noise", Pattern: regexp.MustCompile(`link flap test`)}, // State 0: deliberately no event
		{Name: "mine/any", Pattern: regexp.MustCompile(`link`), State: detect.Up},
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for line, want := range map[string]string{
		"link aws lost":      "down aws",
		"link lost":          "down default",
		"link flap test now": "none",
		"link restored":      "up *",
	} {
		if got := outcome(p.ParseLine([]byte(line))); got != want {
			t.Errorf("%q: got %s, want %s", line, got, want)
		}
	}
}

func TestParseLineLimitsAndBadInput(t *testing.T) {
	p, err := NewParser(StrongSwan().Rules, 64)
	if err != nil {
		t.Fatal(err)
	}
	long := []byte("13[IKE] giving up after 5 retransmits " + strings.Repeat("x", 64))
	if _, ok, err := p.ParseLine(long); ok || !errors.Is(err, ErrLineTooLong) {
		t.Errorf("long line: ok=%v err=%v, want ErrLineTooLong", ok, err)
	}
	exact := []byte(strings.Repeat(" ", 64-len("13[IKE] giving up after 5 retransmits")) + "13[IKE] giving up after 5 retransmits")
	if _, ok, err := p.ParseLine(append(exact, '\r', '\n')); !ok || err != nil {
		t.Errorf("64-byte line + CRLF: ok=%v err=%v, want an event", ok, err)
	}
	for _, in := range []string{"", "\n", "<", "<>", "<1", "<abc>x", "<-1>x", "<+1>x", "<1921>x", "<30>1 ", "<30>1 a b c d e [x", "<30>1 a b c d e x", "<30>1 a b c d e -x"} {
		ev, ok, err := p.ParseLine([]byte(in))
		if ok {
			t.Errorf("%q: got event %v", in, ev)
		}
		if in != "" && in != "\n" && !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v, want ErrMalformed", in, err)
		}
	}
	// A tunnel id that is not UTF-8 is malformed, not an event.
	if _, ok, err := p.ParseLine([]byte("[IKE] CHILD_SA n\xff{1} established")); ok || !errors.Is(err, ErrMalformed) {
		t.Errorf("non-UTF-8 tunnel: ok=%v err=%v", ok, err)
	}
}

func TestSABookkeepingIsBounded(t *testing.T) {
	p, err := NewParser(StrongSwan().Rules, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxTrackedTunnels + 100 {
		line := fmt.Sprintf("[IKE] CHILD_SA t%d{1} established", i)
		if _, ok, err := p.ParseLine([]byte(line)); !ok || err != nil {
			t.Fatalf("%s: ok=%v err=%v", line, ok, err)
		}
	}
	for i := range maxSAsPerTunnel * 3 {
		p.ParseLine(fmt.Appendf(nil, "[IKE] CHILD_SA one{%d} established", i))
	}
	p.mu.Lock()
	tunnels, perTunnel := len(p.sa), len(p.sa["one"])
	p.mu.Unlock()
	if tunnels > maxTrackedTunnels || perTunnel > maxSAsPerTunnel {
		t.Errorf("tracking %d tunnels, %d SAs for one; bounds %d, %d", tunnels, perTunnel, maxTrackedTunnels, maxSAsPerTunnel)
	}
}

func TestPackByName(t *testing.T) {
	for _, name := range []string{"yamaha", "StrongSwan", "libreswan", "cisco", "juniper", "fortigate"} {
		if _, err := PackByName(name); err != nil {
			t.Error(err)
		}
	}
	if _, err := PackByName("netscreen"); err == nil || !strings.Contains(err.Error(), "strongswan") {
		t.Errorf("unknown pack: err = %v, want a list of packs", err)
	}
	m := map[string]string{"1": "a"}
	pk := YamahaRTX().WithTunnelMap(m)
	m["2"] = "b" // the pack keeps its own copy
	if _, ok := pk.Rules[0].TunnelMap["2"]; ok {
		t.Error("WithTunnelMap shares the caller's map")
	}
}
