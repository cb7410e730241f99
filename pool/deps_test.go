package pool

import (
	osexec "os/exec"
	"strings"
	"testing"
)

// A program that imports pool compiles no database driver, broker client,
// HTTP server or feed: drivers come from the adapter packages the user
// imports, feeds from detect's subpackages.
func TestPoolDependsOnNoDriverOrFeed(t *testing.T) {
	out, err := osexec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		switch {
		case dep == "net/http",
			strings.HasPrefix(dep, "github.com/flapguard/flapguard/detect/"),
			strings.HasPrefix(dep, "github.com/flapguard/flapguard/pool/"),
			strings.HasPrefix(dep, "github.com/microsoft/go-mssqldb"),
			strings.HasPrefix(dep, "github.com/jackc/"),
			strings.HasPrefix(dep, "github.com/go-sql-driver/"),
			strings.HasPrefix(dep, "github.com/nats-io/"):
			t.Errorf("pool depends on %s", dep)
		}
	}
}
