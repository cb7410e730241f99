//go:build linux

package lab

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Measuring the emulated path. Receive times are the kernel's (SO_TIMESTAMPNS),
// so the test process's own scheduling does not blur what the path did;
// send times are taken just before the send. App and db share the host's
// clock, so one-way delays are measurable too.

// percentile is the p-th percentile (0..100) of ds, by nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// stampedSocket makes c's kernel record each datagram's arrival time and
// gives it a receive buffer no burst in these tests can fill.
func stampedSocket(t *testing.T, c syscall.Conn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		}
	}); err != nil || serr != nil {
		t.Fatalf("socket options: %v %v", err, serr)
	}
}

// rxTime extracts the kernel's receive timestamp from oob.
func rxTime(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return time.Unix(sec, nsec), true
		}
	}
	return time.Time{}, false
}

// pingRTTs sends n ICMP echo requests from the app namespace to the db
// address, one every gap, and returns the round trips of the replies that
// came back within wait of the last send. Both ends of each round trip are
// stamped by the kernel as the packets cross the app's veth (a packet
// socket sees outgoing packets too), so the numbers are the path's alone.
// The first pingWarmup pings are not counted: the kernel turns packet
// stamping on a moment after the first socket asks for it, and until then
// a packet is stamped when it is read.
func pingRTTs(t *testing.T, l *Lab, n int, gap, wait time.Duration) []time.Duration {
	t.Helper()
	const pingWarmup = 10
	n += pingWarmup
	var c *net.IPConn
	var sniff int
	if err := l.app.do(func() error {
		var err error
		if c, err = net.ListenIP("ip4:icmp", &net.IPAddr{IP: l.AppAddr().AsSlice()}); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(l.ifAppVPN)
		if err != nil {
			return err
		}
		// ETH_P_ALL: only such taps see outgoing packets.
		if sniff, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL))); err != nil {
			return err
		}
		return unix.Bind(sniff, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer unix.Close(sniff)
	for _, o := range []struct{ opt, v int }{{unix.SO_TIMESTAMPNS, 1}, {unix.SO_RCVBUFFORCE, 8 << 20}} {
		if err := unix.SetsockoptInt(sniff, unix.SOL_SOCKET, o.opt, o.v); err != nil {
			t.Fatal(err)
		}
	}
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := unix.SetsockoptTimeval(sniff, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	id := uint16(time.Now().UnixNano())
	var stop atomic.Bool
	done := make(chan []time.Duration)
	go func() {
		sent := make([]time.Time, n)
		var rtts []time.Duration
		b, oob := make([]byte, 1500), make([]byte, 512)
		for len(rtts) < n-pingWarmup && !stop.Load() {
			nb, noob, _, _, err := unix.Recvmsg(sniff, b, oob, 0)
			if err != nil {
				continue // the receive timeout: look at stop again
			}
			at, ok := rxTime(oob[:noob])
			p := b[:nb]
			if !ok || len(p) < 20 || p[0]>>4 != 4 || p[9] != 1 {
				continue
			}
			p = p[int(p[0]&0x0f)*4:]
			if len(p) < 8 || binary.BigEndian.Uint16(p[4:6]) != id {
				continue
			}
			seq := int(binary.BigEndian.Uint16(p[6:8]))
			switch {
			case seq >= n:
			case p[0] == 8: // our request, leaving
				sent[seq] = at
			case p[0] == 0 && !sent[seq].IsZero() && seq >= pingWarmup: // its reply, arriving
				rtts = append(rtts, at.Sub(sent[seq]))
			}
		}
		done <- rtts
	}()
	dst := &net.IPAddr{IP: l.DBAddr().AsSlice()}
	for seq := range n {
		msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq), 'f', 'g', 'l', 'a', 'b', 0, 0, 0}
		cs := icmpChecksum(msg)
		msg[2], msg[3] = byte(cs>>8), byte(cs)
		if _, err := c.WriteTo(msg, dst); err != nil {
			t.Fatalf("ping %d: %v", seq, err)
		}
		time.Sleep(gap)
	}
	timer := time.AfterFunc(wait, func() { stop.Store(true) })
	defer timer.Stop()
	return <-done
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// oneWay is what a UDP stream from one namespace to the other showed.
type oneWay struct {
	sent, received int
	inversions     int // datagrams that arrived after a later-sent one
	delays         []time.Duration
}

func (o oneWay) String() string {
	return fmt.Sprintf("sent %d, received %d (lost %d = %.2f%%), one-way median %v p99 %v, %d out of order",
		o.sent, o.received, o.sent-o.received, 100*float64(o.sent-o.received)/float64(o.sent),
		percentile(o.delays, 50).Round(10*time.Microsecond), percentile(o.delays, 99).Round(10*time.Microsecond), o.inversions)
}

// udpSocket opens a timestamped UDP socket in ns at addr:0.
func udpSocket(t *testing.T, ns *namespace, addr netip.Addr) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := ns.do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	stampedSocket(t, c)
	return c
}

// sendStream sends n datagrams (sequence number, send time) from c to dst,
// in bursts of three with a short sleep between: about 2,000 a second.
func sendStream(t *testing.T, c *net.UDPConn, dst netip.AddrPort, n int) {
	b := make([]byte, 64)
	for i := range n {
		binary.BigEndian.PutUint64(b[0:8], uint64(i))
		binary.BigEndian.PutUint64(b[8:16], uint64(time.Now().UnixNano()))
		if _, err := c.WriteToUDPAddrPort(b, dst); err != nil {
			t.Errorf("send %d: %v", i, err)
			return
		}
		if i%3 == 2 {
			time.Sleep(time.Millisecond)
		}
	}
}

// receiveStream reads datagrams from sendStream until c's deadline,
// counting them in got as they arrive.
func receiveStream(c *net.UDPConn, n int, got *atomic.Int64) oneWay {
	o := oneWay{sent: n}
	seen := make([]bool, n)
	maxSeq := -1
	b, oob := make([]byte, 1500), make([]byte, 512)
	for {
		nb, noob, _, _, err := c.ReadMsgUDP(b, oob)
		if err != nil {
			return o
		}
		at, ok := rxTime(oob[:noob])
		if !ok || nb < 16 {
			continue
		}
		seq := int(binary.BigEndian.Uint64(b[0:8]))
		if seq >= n || seen[seq] {
			continue
		}
		seen[seq] = true
		o.received++
		got.Add(1)
		o.delays = append(o.delays, at.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(b[8:16])))))
		if seq < maxSeq {
			o.inversions++
		}
		maxSeq = max(maxSeq, seq)
	}
}

// streams sends n datagrams each way at once, app to db and db to app, and
// returns what arrived. It waits on state: until the emulator has seen
// every datagram and holds none, then until the receivers have read all
// it delivered.
func streams(t *testing.T, l *Lab, n int) (toDB, toApp oneWay, stats PathStats) {
	t.Helper()
	app, db := udpSocket(t, l.app, l.AppAddr()), udpSocket(t, l.db, l.DBAddr())
	before, err := l.PathStats()
	if err != nil {
		t.Fatal(err)
	}
	var gotDB, gotApp atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { toDB = receiveStream(db, n, &gotDB) })
	wg.Go(func() { toApp = receiveStream(app, n, &gotApp) })
	var senders sync.WaitGroup
	senders.Go(func() { sendStream(t, app, db.LocalAddr().(*net.UDPAddr).AddrPort(), n) })
	senders.Go(func() { sendStream(t, db, app.LocalAddr().(*net.UDPAddr).AddrPort(), n) })
	senders.Wait()

	settled := func(c, b PathCounters) bool {
		in := c.Packets - b.Packets
		return in >= uint64(n) && c.Dropped+c.Overflow+c.Delivered+c.WriteErrs == c.Packets
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if stats, err = l.PathStats(); err != nil {
			t.Fatal(err)
		}
		if settled(stats.ToDB, before.ToDB) && settled(stats.ToApp, before.ToApp) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator did not settle: before %+v, now %+v", before, stats)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantDB := int64(stats.ToDB.Delivered - before.ToDB.Delivered)
	wantApp := int64(stats.ToApp.Delivered - before.ToApp.Delivered)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if gotDB.Load() >= wantDB && gotApp.Load() >= wantApp {
			break
		}
	}
	app.SetReadDeadline(time.Now())
	db.SetReadDeadline(time.Now())
	wg.Wait()
	stats.ToDB = diff(stats.ToDB, before.ToDB)
	stats.ToApp = diff(stats.ToApp, before.ToApp)
	return toDB, toApp, stats
}

func diff(a, b PathCounters) PathCounters {
	return PathCounters{Packets: a.Packets - b.Packets, Dropped: a.Dropped - b.Dropped, Overflow: a.Overflow - b.Overflow,
		Delivered: a.Delivered - b.Delivered, WriteErrs: a.WriteErrs - b.WriteErrs}
}
