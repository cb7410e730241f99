package tdsserver

import "fmt"

// HangAfterAccept, while on, makes the server accept TCP connections and then
// never read from or write to them, as a server behind a half-broken path
// can (go-mssqldb ignores the context during PRELOGIN: issue #254). Turning
// it off affects only later connections; hung ones stay hung until
// CloseSessions or Close. They have no SPID and are not in Sessions.
func (s *Server) HangAfterAccept(on bool) { s.hang.Store(on) }

// HungConns returns how many connections HangAfterAccept is holding.
func (s *Server) HungConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hung)
}

// Freeze makes every existing session behave like a blackholed flow: input
// is read and discarded (ATTENTION included, so a cancelled query gets no
// confirmation) and nothing is sent, not even the answer of a request that
// was running (SessionInfo counts both as Swallowed and Dropped). The TCP
// connection itself stays up and acknowledges everything, so only
// application-level timeouts notice. Sessions opened later are not frozen.
// It returns how many sessions it froze.
func (s *Server) Freeze() int {
	sessions := s.liveSessions()
	for _, sess := range sessions {
		sess.frozen.Store(true)
	}
	return len(sessions)
}

// Unfreeze lets frozen sessions read and answer again. Whatever they
// swallowed meanwhile is lost, so their clients usually have given up.
func (s *Server) Unfreeze() {
	for _, sess := range s.liveSessions() {
		sess.frozen.Store(false)
	}
}

// CloseSessions closes the socket of every session and hung connection:
// with FIN, or with RST when rst is true (SetLinger(0); a listener whose
// conns lack SetLinger gets a plain close). It returns how many it closed.
// The listeners stay open.
func (s *Server) CloseSessions(rst bool) int {
	s.mu.Lock()
	hung := s.takeHungLocked()
	s.mu.Unlock()
	for _, c := range hung {
		if l, ok := c.(interface{ SetLinger(int) error }); ok && rst {
			_ = l.SetLinger(0)
		}
		_ = c.Close()
	}
	sessions := s.liveSessions()
	for _, sess := range sessions {
		sess.close(rst)
	}
	return len(hung) + len(sessions)
}

// KillSessions makes every existing session fail with a fatal ERROR token
// (number, class; e.g. 596, 21 "Cannot continue the execution because the
// session is in the kill state.") followed by DONE with DONE_SRVERROR, after
// which its socket is closed with FIN. A session running a request gets it
// at once as that request's answer; an idle one gets it as the answer to its
// next request (so the client sees the error, not a reset). class must be
// 0..255; it returns how many sessions were marked.
func (s *Server) KillSessions(number, class int) (int, error) {
	if class < 0 || class > 255 || int(int32(number)) != number {
		return 0, fmt.Errorf("tdsserver: KillSessions(%d, %d): number must fit int32 and class 0..255", number, class)
	}
	msg := "Cannot continue the execution because the session is in the kill state."
	if number != 596 {
		msg = fmt.Sprintf("tdsserver: session killed with error %d.", number)
	}
	sessions := s.liveSessions()
	for _, sess := range sessions {
		sess.markKill(&SQLError{Number: int32(number), State: 1, Class: uint8(class), Message: msg})
	}
	return len(sessions), nil
}
