package detect_test

import (
	"errors"
	"testing"

	"github.com/flapguard/flapguard/detect"
)

// Issue 22 item 9: on main, tunnel ids holding U+202E (right-to-left
// override) and U+2066 (left-to-right isolate) were valid, so a sender
// could put them in every log line that names the tunnel.
func TestValidateRefusesFormatCharacters(t *testing.T) {
	for _, id := range []string{"aws\u202e1-", "\u2066aws-1", "aws\u200b-1", "aws-1\ufeff", "a\u00adb"} {
		err := detect.Event{Tunnel: id, State: detect.Down}.Validate()
		if !errors.Is(err, detect.ErrInvalidEvent) {
			t.Errorf("tunnel %+q: Validate = %v, want ErrInvalidEvent", id, err)
		}
	}
	for _, id := range []string{"aws-1", "東京-vpn", "*", "tunnel é"} {
		if err := (detect.Event{Tunnel: id, State: detect.Up}).Validate(); err != nil {
			t.Errorf("tunnel %+q: Validate = %v, want nil", id, err)
		}
	}
}
