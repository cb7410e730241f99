package natsfeed

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/flapguard/flapguard/detect"
)

// FuzzDecode: whatever a publisher sends, decode never panics, and what it
// accepts is a valid event whose source is clean, with a sent time.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"tunnel":"aws-1","state":"down","at":"2026-11-25T19:30:52Z","source":"syslog:yamaha/tunnel-down","sent":"2026-11-25T19:30:52.123456789Z"}`))
	f.Add([]byte(`{"v":1,"tunnel":"*","state":"rekey","sent":"2026-11-25T19:30:52Z"}`))
	f.Add([]byte(`{"v":1,"tunnel":"a\u202e","state":"up","sent":"2026-11-25T19:30:52Z","source":"x\u2066y"}`))
	f.Add([]byte(`{"v":1,"tunnel":"a","state":"UP","sent":"2026-11-25T19:30:52Z","extra":[1,2,{"x":null}]}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"v":1,"tunnel":"a","state":"down","sent":"0001-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := decode(data)
		if err != nil {
			if d != (decoded{}) {
				t.Fatalf("error %v with a non-zero result %+v", err, d)
			}
			return
		}
		if err := d.Event.Validate(); err != nil {
			t.Fatalf("accepted an invalid event %+v: %v", d.Event, err)
		}
		if d.sent.IsZero() {
			t.Fatalf("accepted %q without a sent time", data)
		}
		if !strings.HasPrefix(d.Source, "nats") || !utf8.ValidString(d.Source) ||
			strings.ContainsFunc(d.Source, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) {
			t.Fatalf("source %+q is not clean", d.Source)
		}
		if d.State != detect.Down && d.State != detect.Up && d.State != detect.Rekey {
			t.Fatalf("state %v", d.State)
		}
	})
}
