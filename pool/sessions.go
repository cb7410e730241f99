package pool

import "github.com/flapguard/flapguard/internal/sockopt"

// sessionCounts reports, for Stats, how many of the conns database/sql
// holds have no server session any more (gone), and how many driver conns
// the pool holds open itself, outside database/sql (own: a probe's fresh
// connection, the reaper's, a rebuild's before database/sql takes it).
//
// A conn is gone when its driver conn was lost or severed (bad), closed by
// a reset while it sat idle (retired: database/sql still counts it open
// until its next borrow renews it), or when the server's FIN or RST is in
// its socket (the same free look as borrowCheck, taken here only for conns
// that sit idle, so nothing a borrower does is raced).
func (p *Pool) sessionCounts() (gone, own int) {
	held := 0
	p.mu.Lock()
	for c := range p.conns {
		l := c.l()
		if l.closed.Load() {
			gone++
			continue
		}
		held++
		switch {
		case l.bad.Load(), l.gone.Load():
			gone++
		case c.state.Load() == stateIdle || c.state.Load() == stateFresh:
			if sock := l.socks.current(); sock != nil {
				if closed, _, ok := sockopt.Peer(sock); ok && closed {
					gone++
				}
			}
		}
	}
	p.mu.Unlock()
	own = int(p.stats.rawOpen.Load()) - held
	return gone, max(own, 0)
}
