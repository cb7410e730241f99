package pool

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flapguard/flapguard/internal/sockopt"
)

// dialer is the pool's own dialer: it hardens every TCP socket it makes
// (keepalive, TCP_USER_TIMEOUT) and remembers it, so the pool can close the
// sockets under a connection (sever) when the driver would otherwise wait.
//
// A socket dialed while the pool's connector is making a connection lands
// in that connection's socketSet (found through the context); any other
// socket (pgx dials one to send a cancel request) is tracked loose with the
// generation it was made in.
type dialer struct {
	p    *Pool
	base DialFunc

	mu    sync.Mutex // protects loose
	loose map[*looseConn]uint64
}

func newDialer(p *Pool) *dialer {
	base := p.cfg.Dial
	if base == nil {
		base = (&net.Dialer{}).DialContext
	}
	return &dialer{p: p, base: base, loose: make(map[*looseConn]uint64)}
}

type socketSetKey struct{}

// handshakeKey marks a check's connect: its value, a func(), is called when
// the TCP handshake completed (staggeredProbe stops sending SYNs then).
type handshakeKey struct{}

// socketSet holds the sockets a connection was made with.
type socketSet struct {
	mu     sync.Mutex // protects conns, dials and closed
	conns  []net.Conn
	dials  []context.CancelFunc // dials in progress (a SYN lost in a dead path waits a second for its retransmission)
	closed bool

	// abandoned: a connect still in progress was cut because the path came
	// back after it started into a dead one; the connector tries again.
	abandoned atomic.Bool

	// The server's session, as Driver.WatchSocket read it off the wire.
	sessMu sync.Mutex // protects sessID and sessFP
	sessID int64
	sessFP string
}

// foundSession records the session a Driver.WatchSocket learned; the first
// one wins (a connect may dial more than one socket).
func (s *socketSet) foundSession(id int64, fp string) {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if s.sessID == 0 && id > 0 {
		s.sessID, s.sessFP = id, fp
	}
}

func (s *socketSet) session() (int64, string) {
	if s == nil {
		return 0, ""
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	return s.sessID, s.sessFP
}

func (s *socketSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns = append(s.conns, c)
	return true
}

// dialing registers a dial in progress, cancelled by closeAll; false if
// the set is closed already.
func (s *socketSet) dialing(cancel context.CancelFunc) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.dials = append(s.dials, cancel)
	return true
}

// closeAll closes every socket, cancels the dials in progress and makes
// later adds fail; it returns how many sockets it closed.
func (s *socketSet) closeAll() int {
	s.mu.Lock()
	conns, dials := s.conns, s.dials
	s.conns, s.dials, s.closed = nil, nil, true
	s.mu.Unlock()
	for _, cancel := range dials {
		cancel()
	}
	for _, c := range conns {
		c.Close()
	}
	return len(conns)
}

// current returns the socket the connection talks over (the last one dialed).
func (s *socketSet) current() net.Conn {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) == 0 {
		return nil
	}
	return s.conns[len(s.conns)-1]
}

// DialContext dials with the base dialer, bounded by Config.DialTimeout.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.p.cfg.DialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.p.cfg.DialTimeout)
		defer cancel()
	}
	set, _ := ctx.Value(socketSetKey{}).(*socketSet)
	dctx := ctx
	if set != nil {
		// A connect the pool cuts (abandonPending: it started into a path
		// that has come back since; a sever; Close) may still be in its
		// TCP handshake, with no socket in the set yet: its dial is
		// cancelled too, so the connector's retry sends a new SYN now
		// rather than wait for the kernel's retransmission (1s, 3s, ...).
		var cancel context.CancelFunc
		dctx, cancel = context.WithCancel(ctx)
		defer cancel()
		if !set.dialing(cancel) {
			return nil, net.ErrClosed
		}
	}
	c, err := d.base(dctx, network, addr)
	if err != nil {
		return nil, err
	}
	if f, ok := ctx.Value(handshakeKey{}).(func()); ok {
		f() // the server's TCP answered: the path carries packets
	}
	d.harden(c)
	if set != nil {
		if !set.add(c) {
			// The connection being made was severed while we dialed.
			c.Close()
			return nil, net.ErrClosed
		}
		if w := d.p.drv.WatchSocket; w != nil && d.p.reaping() {
			// The set keeps the socket itself (sever, the free check);
			// the driver may get a watching wrapper.
			return w(ctx, c, set.foundSession), nil
		}
		return c, nil
	}
	lc := &looseConn{Conn: c, d: d}
	d.mu.Lock()
	d.loose[lc] = d.p.gen.Load()
	d.mu.Unlock()
	return lc, nil
}

func (d *dialer) harden(c net.Conn) {
	if w, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn (Driver.SocketOf)
		c = w.NetConn()
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	cfg := d.p.cfg
	if cfg.KeepAliveIdle != off || cfg.KeepAliveInterval != off || cfg.KeepAliveCount != off {
		// net.KeepAliveConfig: -1 keeps the OS value.
		tc.SetKeepAliveConfig(net.KeepAliveConfig{
			Enable:   true,
			Idle:     cfg.KeepAliveIdle,
			Interval: cfg.KeepAliveInterval,
			Count:    cfg.KeepAliveCount,
		})
	}
	if cfg.UserTimeout != off {
		if raw, err := tc.SyscallConn(); err == nil {
			if err := sockopt.SetUserTimeout(raw, cfg.UserTimeout); err != nil {
				d.p.log.Debug("flapguard: TCP_USER_TIMEOUT not set", "err", err)
			}
		}
	}
}

// closeLoose closes loose sockets made before generation gen.
func (d *dialer) closeLoose(gen uint64) int {
	d.mu.Lock()
	var old []*looseConn
	for c, g := range d.loose {
		if g < gen {
			old = append(old, c)
		}
	}
	d.mu.Unlock()
	for _, c := range old {
		c.Close()
	}
	return len(old)
}

type looseConn struct {
	net.Conn
	d    *dialer
	once sync.Once
}

func (c *looseConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.d.mu.Lock()
		delete(c.d.loose, c)
		c.d.mu.Unlock()
	})
	return err
}

// livenessTimeout derives a ping deadline from what the kernel and the
// pool know about the path, clamped to [LivenessTimeoutMin,
// LivenessTimeoutMax]. It is the largest of
//
//   - 4·rtt + 8·rttvar: a round trip with a wide margin for jitter;
//   - rtt + rto + 4·rttvar + 100ms: a round trip that survives one lost
//     packet, the request or the reply, recovered by a retransmission after
//     the kernel's retransmission timeout (tcpi_rto: srtt + 4·rttvar, at
//     least 200ms on Linux); the 100ms cover the server's own timeout for
//     a lost reply, which it computes from its own samples (inflated by
//     our delayed ACKs), and the scheduling of both ends. Below this a
//     single loss on a lossy but working WAN fails a healthy connection
//     (measured in the lab's S9: 1.6% of checks at 1% loss without the
//     margin, 1.1% at 3% loss with 50ms);
//   - 3 × the mean ping the pool has observed: TCP's RTT does not see a
//     busy server or a slow scheduler, the application's round trips do.
//
// On a LAN that is ~300ms, on a 40ms VPN ~400ms: a dead connection is
// still found within a few round trips plus one retransmission timeout. Without the socket (no socket
// control) rtt is the observed ping and rto the kernel's floor, 200ms.
const (
	livenessSlack = 100 * time.Millisecond
	lossyPath     = 1.0 / 200 // share of resent data segments that makes a path lossy
)

func (p *Pool) livenessTimeout(sock net.Conn) time.Duration {
	var rtt, rttvar, rto time.Duration
	var ok bool
	if sock != nil {
		rtt, rttvar, rto, ok = sockopt.RTT(sock)
	}
	ping := time.Duration(p.pingEWMA.Load())
	if !ok {
		rtt, rttvar, rto = ping, 0, 200*time.Millisecond
	}
	d := max(4*rtt+8*rttvar, rtt+rto+4*rttvar+livenessSlack, 3*ping)
	if ok {
		if loss, known := sockopt.Loss(sock); known && loss > lossyPath {
			d = max(d, rtt+3*rto+4*rttvar)
		}
	}
	return min(max(d, p.cfg.LivenessTimeoutMin), p.cfg.LivenessTimeoutMax)
}
