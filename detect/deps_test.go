package detect

import (
	"os/exec"
	"strings"
	"testing"
)

// detect is the vocabulary and the judgement: a program that imports only
// detect must not link an HTTP stack, and must not compile regular
// expressions at init (the feeds under detect/ are packages of their own).
func TestDetectDependsOnNoFeed(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		switch {
		case dep == "net/http", dep == "regexp",
			strings.HasPrefix(dep, "github.com/flapguard/flapguard/detect/"),
			strings.HasPrefix(dep, "github.com/nats-io/"):
			t.Errorf("detect depends on %s", dep)
		}
	}
}
