package syslogfeed

import (
	"os/exec"
	"strings"
	"testing"
)

// A program that receives syslog links no HTTP stack: the helpers it
// shares with the webhook (detect/internal/feedkit) are io-level.
func TestSyslogfeedLinksNoHTTP(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		if dep == "net/http" || strings.HasPrefix(dep, "github.com/nats-io/") {
			t.Errorf("syslogfeed depends on %s", dep)
		}
	}
}
