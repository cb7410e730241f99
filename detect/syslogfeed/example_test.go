package syslogfeed_test

import (
	"errors"
	"fmt"
	"net"

	"github.com/flapguard/flapguard/detect"
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

// A Receiver listens for a router's syslog (here TCP on loopback, one
// message per line) and hands the events to a Notifier, a *pool.Pool in a
// service. The Notifier is called from the receiver's delivery goroutine;
// here it passes the events to the example through a channel.
func ExampleNew() {
	events := make(chan detect.Event, 4)
	r, err := syslogfeed.New(syslogfeed.Config{
		Notifier: detect.NotifierFunc(func(ev detect.Event) { events <- ev }),
		Rules:    syslogfeed.CiscoIOS().WithTunnelMap(map[string]string{"Tunnel0": "dc-1"}).Rules,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = r.ServeTCP(ln) }() // returns when r is closed

	router, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer router.Close()
	fmt.Fprint(router,
		"<189>May 30 16:57:21 rtr1 %LINEPROTO-5-UPDOWN: Line protocol on Interface Tunnel0, changed state to down\n"+
			"<189>May 30 16:57:22 rtr1 %SYS-5-CONFIG_I: Configured from console by admin\n"+
			"<189>May 30 16:57:40 rtr1 %LINEPROTO-5-UPDOWN: Line protocol on Interface Tunnel0, changed state to up\n")
	for range 2 {
		ev := <-events
		fmt.Println(ev.Tunnel, ev.State, ev.Source)
	}
	// Output:
	// dc-1 down syslog:cisco/lineproto-down@127.0.0.1
	// dc-1 up syslog:cisco/lineproto-up@127.0.0.1
}
