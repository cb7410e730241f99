package detect_test

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/flapguard/flapguard/detect"
)

// ParseState reads the state words used by webhooks, flags and config
// files. Anything else is an error, never a guess.
func ExampleParseState() {
	for _, s := range []string{"down", " UP ", "rekey", "flapping"} {
		st, err := detect.ParseState(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(st)
	}
	// Output:
	// down
	// up
	// rekey
	// detect: unknown tunnel state "flapping" (want down, up or rekey)
}

// Multi fans one event out to several notifiers (say, every pool of a
// process), in order. A *pool.Pool is a Notifier; here two functions stand
// in for pools.
func ExampleMulti() {
	orders := detect.NotifierFunc(func(ev detect.Event) { fmt.Println("orders pool:", ev) })
	billing := detect.NotifierFunc(func(ev detect.Event) { fmt.Println("billing pool:", ev) })

	n := detect.Multi(orders, nil, billing) // nil entries are skipped
	n.Notify(detect.Event{Tunnel: "aws-1", State: detect.Down, Source: "example"})
	// Output:
	// orders pool: tunnel aws-1 down (source example)
	// billing pool: tunnel aws-1 down (source example)
}

// A rule pack turns a router's log lines into events. YAMAHA RTX logs
// "IP Tunnel[N] Up|Down" for every tunnel interface, so map the numbers you
// care about to your tunnel ids; other tunnels are ignored.
func ExampleParser_ParseLine() {
	pack := detect.YamahaRTX().WithTunnelMap(map[string]string{"1": "osaka-dc"})
	p, err := detect.NewParser(pack.Rules, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, line := range []string{
		"2018/10/29 17:32:55: IP Tunnel[1] Down",
		"2018/10/29 17:32:56: IP Tunnel[3] Down",
		"2018/10/29 17:33:10: [IKE] initiate IPsec phase to 200.1.1.1",
		"2018/10/29 17:33:24: IP Tunnel[1] Up",
	} {
		ev, ok, err := p.ParseLine([]byte(line))
		switch {
		case errors.Is(err, detect.ErrIgnored):
			fmt.Println("ignored")
		case err != nil:
			fmt.Println("error:", err)
		case !ok:
			fmt.Println("not an event")
		default:
			fmt.Println(ev.Tunnel, ev.State, ev.Source)
		}
	}
	// Output:
	// osaka-dc down syslog:yamaha/tunnel-down
	// ignored
	// not an event
	// osaka-dc up syslog:yamaha/tunnel-up
}

// Classify says whether a driver's error means the connection is gone, and
// if so whether the statement can have reached the server. A classifier of
// your own, asked first, can overrule the built-in rules.
func ExampleClassify() {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, err := range []error{
		errors.New("duplicate key value violates unique constraint"),
		refused,
		reset,
		fmt.Errorf("exec: %w", io.ErrUnexpectedEOF),
		driver.ErrBadConn,
	} {
		fmt.Printf("%-12s %v\n", detect.Classify(err), err)
	}

	// A site rule: this proxy's "backend gone" message means a lost
	// connection whose statement never left.
	proxyGone := detect.ClassifierFunc(func(err error) detect.Verdict {
		if err.Error() == "proxy: no backend" {
			return detect.LostUnsent
		}
		return detect.Continue
	})
	fmt.Println(detect.Classify(errors.New("proxy: no backend"), proxyGone))
	// Output:
	// alive        duplicate key value violates unique constraint
	// lost-unsent  dial tcp: connection refused
	// lost         read tcp: connection reset by peer
	// lost         exec: unexpected EOF
	// lost-unsent  driver: bad connection
	// lost-unsent
}
