package syslogfeed

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseLine: no input panics; an event always validates; ok and err
// never come together; a rejected line is classified (ignored, malformed or
// too long). Seeds: every fixture line, so plain `go test` runs them.
func FuzzParseLine(f *testing.F) {
	for _, fl := range loadFixtures(f) {
		f.Add([]byte(fl.line))
	}
	f.Add([]byte("<34>1 2003-10-11T22:14:15.003Z h a - - [x a=\"\\\"]\"] \xef\xbb\xbfIP Tunnel[1] Down"))
	f.Add([]byte("[IKE] rekeyed CHILD_SA a{1} x with a{2}"))
	var rules []Rule
	for _, p := range Packs() {
		rules = append(rules, p.Rules...)
	}
	mapped := YamahaRTX().WithTunnelMap(map[string]string{"1": "aws-1"}).Rules
	p, err := NewParser(append(mapped, rules...), 512)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, ok, err := p.ParseLine(line)
		switch {
		case ok && err != nil:
			t.Fatalf("ok with error %v", err)
		case ok:
			if verr := ev.Validate(); verr != nil {
				t.Fatalf("event %+v fails Validate: %v", ev, verr)
			}
			if !strings.HasPrefix(ev.Source, "syslog:") {
				t.Fatalf("source %q", ev.Source)
			}
		case err != nil:
			if !errors.Is(err, ErrIgnored) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLineTooLong) {
				t.Fatalf("unclassified error %v", err)
			}
		}
	})
}
