package tdsserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxQueued bounds the messages read but not yet answered.
const maxQueued = 8

// Causes that end a running request early.
var (
	errAttention = errors.New("tdsserver: attention")
	errKilled    = errors.New("tdsserver: session killed")
)

// Session is one client connection. Two goroutines serve it: a reader that
// assembles messages (and notices ATTENTION while a request runs) and a
// worker that answers them in order. Its methods are safe for concurrent use.
type Session struct {
	srv     *Server
	conn    net.Conn
	spid    int
	started time.Time
	log     *slog.Logger

	ctx       context.Context // ends when the session closes
	cancel    context.CancelFunc
	msgs      chan message // reader → worker
	frozen    atomic.Bool
	swallowed atomic.Int64 // messages discarded while frozen
	dropped   atomic.Int64 // replies not sent while frozen
	maxPacket atomic.Int32 // bound on incoming packets: 32767 until login, then the negotiated size
	closeOnce sync.Once

	// Worker-only state.
	packetSize int
	tranID     uint64

	mu          sync.Mutex // protects following fields
	user        string
	database    string
	reqCancel   context.CancelCauseFunc // non-nil while a request runs
	attnPending int                     // ATTENTIONs read but not yet answered
	kill        *SQLError               // set by Server.KillSessions
	resets      int
}

// SessionInfo describes a live session.
type SessionInfo struct {
	SPID       int
	RemoteAddr net.Addr
	User       string
	Database   string
	Started    time.Time
	Frozen     bool // Server.Freeze applies to it
	Busy       bool // a request is running (for example a WAITFOR)
	Resets     int  // requests that carried the RESETCONNECTION bit
	Swallowed  int  // messages discarded while frozen
	Dropped    int  // replies not sent while frozen
}

func newSession(srv *Server, conn net.Conn, spid int) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		srv: srv, conn: conn, spid: spid, started: time.Now(),
		log:        srv.log.With("spid", spid, "remote", conn.RemoteAddr().String()),
		ctx:        ctx,
		cancel:     cancel,
		msgs:       make(chan message, maxQueued),
		packetSize: minPacketSize,
	}
	s.maxPacket.Store(maxPacketSize)
	return s
}

// SPID returns the session's server process id (>= 51).
func (s *Session) SPID() int { return s.spid }

// RemoteAddr returns the client's address.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// User returns the login name from LOGIN7 ("" before login).
func (s *Session) User() string { s.mu.Lock(); defer s.mu.Unlock(); return s.user }

// Database returns the database named at login ("master" if none).
func (s *Session) Database() string { s.mu.Lock(); defer s.mu.Unlock(); return s.database }

func (s *Session) info() SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SessionInfo{
		SPID: s.spid, RemoteAddr: s.conn.RemoteAddr(), User: s.user, Database: s.database,
		Started: s.started, Frozen: s.frozen.Load(), Busy: s.reqCancel != nil, Resets: s.resets,
		Swallowed: int(s.swallowed.Load()), Dropped: int(s.dropped.Load()),
	}
}

// close ends the session once; rst makes the kernel send RST instead of FIN
// when the conn supports SetLinger (net.TCPConn does).
func (s *Session) close(rst bool) {
	s.closeOnce.Do(func() {
		if l, ok := s.conn.(interface{ SetLinger(int) error }); ok && rst {
			_ = l.SetLinger(0)
		}
		s.cancel()
		_ = s.conn.Close()
	})
}

// markKill makes the running request, or else the next one, end in e.
func (s *Session) markKill(e *SQLError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill = e
	if s.reqCancel != nil {
		s.reqCancel(errKilled)
	}
}

func (s *Session) pendingKill() *SQLError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kill
}

// readLoop runs in its own goroutine until the conn fails or closes.
func (s *Session) readLoop() {
	defer s.srv.wg.Done()
	defer close(s.msgs)
	for {
		m, err := readMessage(s.conn, int(s.maxPacket.Load()), s.srv.maxMessage)
		if err != nil {
			if errors.Is(err, errProtocol) {
				s.log.Warn("tdsserver: closing session", "err", err)
			} else if !errors.Is(err, io.EOF) && s.ctx.Err() == nil {
				s.log.Debug("tdsserver: read failed", "err", err)
			}
			s.close(false)
			return
		}
		if s.frozen.Load() {
			s.swallowed.Add(1)
			continue // a blackholed flow: input vanishes
		}
		if m.typ == packAttention {
			s.mu.Lock()
			s.attnPending++
			if s.reqCancel != nil {
				s.reqCancel(errAttention)
			}
			s.mu.Unlock()
		}
		select {
		case s.msgs <- m:
		default:
			// TDS without MARS allows one request plus ATTENTION in flight;
			// a client this far ahead is broken, and blocking here would
			// stop the reader from seeing ATTENTION or EOF.
			s.log.Warn("tdsserver: closing session: too many unanswered requests")
			s.close(false)
			return
		}
	}
}

// serve is the worker goroutine.
func (s *Session) serve() {
	defer s.srv.wg.Done()
	defer s.srv.forget(s)
	defer s.close(false)
	s.log.Debug("tdsserver: session started")
	if !s.handshake() {
		return
	}
	for {
		m, ok := s.next()
		if !ok || !s.handle(m) {
			return
		}
	}
}

func (s *Session) next() (message, bool) {
	select {
	case m, ok := <-s.msgs:
		return m, ok
	case <-s.ctx.Done():
		return message{}, false
	}
}

// reply sends one reply message, unless the session is frozen, in which
// case it is silently dropped. A failed write closes the session.
func (s *Session) reply(payload []byte) bool {
	if s.frozen.Load() {
		s.dropped.Add(1)
		return true
	}
	if _, err := s.conn.Write(encodeMessage(packReply, uint16(s.spid), s.packetSize, payload)); err != nil {
		s.close(false)
		return false
	}
	return true
}

// sendKill answers with a fatal error; the caller then closes the session.
// go-mssqldb turns ERROR + DONE_SRVERROR into mssql.ServerError wrapping
// mssql.Error (token.go:1090).
func (s *Session) sendKill(e *SQLError) {
	var w wbuf
	w.message(tokError, e, s.srv.name)
	w.done(tokDone, doneError|doneSrvError, 0, 0)
	s.reply(w.b)
	s.log.Info("tdsserver: session killed", "number", e.Number, "class", e.Class)
}

func (s *Session) handshake() bool {
	m, ok := s.next()
	if !ok {
		return false
	}
	if m.typ != packPrelogin || checkPrelogin(m.data) != nil {
		s.log.Warn("tdsserver: closing session: bad PRELOGIN", "type", m.typ)
		return false
	}
	if !s.reply(preloginReply()) {
		return false
	}
	if m, ok = s.next(); !ok {
		return false
	}
	if e := s.pendingKill(); e != nil {
		s.sendKill(e)
		return false
	}
	if m.typ != packLogin7 {
		s.log.Warn("tdsserver: closing session: expected LOGIN7", "type", m.typ)
		return false
	}
	lr, err := parseLogin7(m.data)
	if err != nil {
		s.log.Warn("tdsserver: closing session", "err", err)
		return false
	}
	if lr.sspi {
		s.reply(loginFailed(s.srv.name))
		return false
	}
	if lr.database == "" {
		lr.database = "master"
	}
	s.mu.Lock()
	s.user, s.database = lr.user, lr.database
	s.mu.Unlock()
	s.packetSize = negotiatePacketSize(lr.packetSize)
	s.maxPacket.Store(int32(s.packetSize))
	s.log.Debug("tdsserver: login", "user", lr.user, "database", lr.database, "app", lr.app, "packet_size", s.packetSize)
	return s.reply(loginReply(lr.database, s.packetSize, s.srv.name))
}

// handle answers one message; false ends the session.
func (s *Session) handle(m message) bool {
	if e := s.pendingKill(); e != nil {
		s.sendKill(e)
		return false
	}
	var w wbuf
	if m.reset && m.typ != packAttention {
		s.mu.Lock()
		s.resets++
		s.mu.Unlock()
		w.envChange(envResetAck, "", "")
	}
	switch m.typ {
	case packAttention:
		s.mu.Lock()
		s.attnPending--
		s.mu.Unlock()
		w.done(tokDone, doneAttn, 0, 0)
		return s.reply(w.b)
	case packSQLBatch, packRPC:
		parse := parseBatch
		if m.typ == packRPC {
			parse = parseRPC
		}
		req, err := parse(m.data)
		if err != nil {
			s.log.Warn("tdsserver: closing session", "err", err)
			return false
		}
		return s.run(&w, req)
	case packTransMgr:
		return s.transaction(&w, m.data)
	}
	s.log.Warn("tdsserver: closing session: unexpected packet type", "type", m.typ)
	return false
}

// run executes a request and sends its answer after w's tokens.
func (s *Session) run(w *wbuf, req request) bool {
	s.mu.Lock()
	if s.attnPending > 0 {
		// Cancelled before it started: the queued ATTENTION's DONE answers it.
		s.mu.Unlock()
		return true
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	s.reqCancel = cancel
	if s.kill != nil { // killed between handle's check and now
		cancel(errKilled)
	}
	s.mu.Unlock()

	var res *Result
	var err error
	if req.bad != nil {
		err = req.bad
	} else {
		res, err = s.execute(ctx, req)
	}

	s.mu.Lock()
	s.reqCancel = nil
	s.mu.Unlock()
	cause := context.Cause(ctx)
	cancel(nil)
	switch {
	case errors.Is(cause, errKilled):
		s.sendKill(s.pendingKill())
		return false
	case errors.Is(cause, errAttention):
		return true // the ATTENTION's DONE follows
	case s.ctx.Err() != nil:
		return false
	}
	fatal := s.encodeResult(w, req.rpc, res, err)
	return s.reply(w.b) && !fatal
}

// encodeResult appends the tokens for a result or an error and reports
// whether the error is fatal (class >= 20), which closes the session as SQL
// Server does.
func (s *Session) encodeResult(w *wbuf, rpc bool, res *Result, err error) (fatal bool) {
	if err == nil && res.Columns != nil {
		var rs wbuf
		if e := rs.encodeResultSet(res.Columns, res.Rows); e != nil {
			err = &SQLError{Number: 50000, State: 1, Class: 16, Message: "tdsserver: bad handler result: " + e.Error()}
		} else {
			w.raw(rs.b)
		}
	}
	doneTok := tokDone
	if rpc {
		doneTok = tokDoneProc
	}
	if err != nil {
		var se *SQLError
		if !errors.As(err, &se) {
			se = &SQLError{Number: 50000, State: 1, Class: 16, Message: err.Error()}
		}
		status := doneError
		if se.Class >= 20 {
			status |= doneSrvError
		}
		w.message(tokError, se, s.srv.name)
		w.done(doneTok, status, 0, 0)
		return se.Class >= 20
	}
	status, count := doneFinal, uint64(0)
	switch {
	case res.Columns != nil:
		status, count = doneCount, uint64(len(res.Rows))
	case res.RowsAffected >= 0:
		status, count = doneCount, uint64(res.RowsAffected)
	}
	if !rpc {
		w.done(tokDone, status, res.cmd, count)
		return false
	}
	// As SQL Server answers sp_executesql: DONEINPROC (with DONE_MORE, or
	// go-mssqldb stops reading, token.go:1078), RETURNSTATUS, DONEPROC.
	w.done(tokDoneInProc, status|doneMore, res.cmd, count)
	w.u8(tokReturnStatus)
	w.u32(0)
	w.done(tokDoneProc, doneFinal, 0, 0)
	return false
}
