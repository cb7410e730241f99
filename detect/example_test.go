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
