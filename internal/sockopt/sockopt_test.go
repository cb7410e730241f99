package sockopt

import (
	"net"
	"testing"
)

func TestRTTOnNonTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, _, _, ok := RTT(a); ok {
		t.Fatal("RTT on a pipe should be unknown")
	}
}
