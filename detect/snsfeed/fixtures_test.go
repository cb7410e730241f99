package snsfeed

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// loadEnvelope reads a testdata SNS envelope (AWS's documented shape, see
// testdata/README.md) and serves the test certificate at its
// SigningCertURL.
func loadEnvelope(t *testing.T, r *rig, name string) msg {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	r.fetch.set(m["SigningCertURL"], r.pki.leafPEM)
	if u := m["SubscribeURL"]; u != "" {
		r.fetch.set(u, []byte("<ConfirmSubscriptionResponse/>"))
	}
	return m
}

func TestFixtureEnvelopes(t *testing.T) {
	tests := []struct {
		file          string
		code          int
		reason        Reason // for a refusal
		confirmations uint64
		unsubscribes  uint64
	}{
		// The guide's example notification carries "Hello world!", not
		// an alarm: authentic, but refused as a Message.
		{"sns-notification.json", http.StatusBadRequest, ReasonMessage, 0, 0},
		{"sns-subscription-confirmation.json", http.StatusOK, 0, 1, 0},
		{"sns-unsubscribe-confirmation.json", http.StatusOK, 0, 0, 1},
	}
	for _, tc := range tests {
		for _, ver := range []string{"1", "2"} {
			t.Run(tc.file+"/v"+ver, func(t *testing.T) {
				r := newRig(t, nil)
				m := loadEnvelope(t, r, tc.file)
				// As published, with its example signature: refused.
				r.wantRejected(r.post(m.json(), m["Type"]), http.StatusForbidden, ReasonSignature)

				rec := r.send(m.with("SignatureVersion", ver))
				if rec.Code != tc.code {
					t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
				}
				st := r.h.Stats()
				if tc.code != http.StatusOK && st.Rejected[tc.reason] != 1 {
					t.Fatalf("stats %+v", st)
				}
				if st.Confirmations != tc.confirmations || st.Unsubscribes != tc.unsubscribes || st.Events != 0 {
					t.Fatalf("stats %+v", st)
				}
				fetched := r.fetch.urls()
				if confirmed := slices.Contains(fetched, m["SubscribeURL"]); confirmed != (tc.confirmations == 1) {
					t.Fatalf("fetches %q", fetched)
				}
			})
		}
	}
}

func TestFixtureAlarms(t *testing.T) {
	tests := []struct {
		file     string
		tunnel   string
		state    detect.State
		at       time.Time
		ignored  bool
		unmapped bool
	}{
		{file: "alarm-tunnel1-alarm.json", tunnel: "aws-1", state: detect.Down, at: time.Date(2026, 3, 14, 11, 59, 57, 412e6, time.UTC)},
		{file: "alarm-tunnel1-ok.json", tunnel: "aws-1", state: detect.Up, at: time.Date(2026, 3, 14, 11, 59, 58, 20e6, time.UTC)},
		{file: "alarm-tunnel2-by-name.json", tunnel: "aws-2", state: detect.Down, at: time.Date(2026, 3, 14, 11, 59, 56, 900e6, time.UTC)},
		{file: "alarm-insufficient-data.json", ignored: true},
		{file: "alarm-ec2-networkout.json", ignored: true},
		{file: "alarm-unmapped.json", unmapped: true},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			r := newRig(t, nil)
			alarm, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			env := loadEnvelope(t, r, "sns-notification.json")
			rec := r.send(env.with("Message", string(alarm), "Subject", `ALARM: "x" in US West (Oregon)`))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			st := r.h.Stats()
			got := r.got()
			switch {
			case tc.ignored:
				if st.Ignored != 1 || len(got) != 0 {
					t.Fatalf("stats %+v, events %v", st, got)
				}
			case tc.unmapped:
				if st.Unmapped != 1 || len(got) != 0 {
					t.Fatalf("stats %+v, events %v", st, got)
				}
			default:
				if len(got) != 1 || got[0].Tunnel != tc.tunnel || got[0].State != tc.state || !got[0].At.Equal(tc.at) {
					t.Fatalf("events %v, want %s %s at %v", got, tc.tunnel, tc.state, tc.at)
				}
				if err := got[0].Validate(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
