package syslogfeed_test

import (
	"errors"
	"fmt"

	"github.com/flapguard/flapguard/detect/syslogfeed"
)

// A rule pack turns a router's log lines into events. YAMAHA RTX logs
// "IP Tunnel[N] Up|Down" for every tunnel interface, so map the numbers you
// care about to your tunnel ids; other tunnels are ignored.
func ExampleParser_ParseLine() {
	pack := syslogfeed.YamahaRTX().WithTunnelMap(map[string]string{"1": "osaka-dc"})
	p, err := syslogfeed.NewParser(pack.Rules, 0)
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
		case errors.Is(err, syslogfeed.ErrIgnored):
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
