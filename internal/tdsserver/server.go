package tdsserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrServerClosed is returned by Serve and Start after Close.
var ErrServerClosed = errors.New("tdsserver: server closed")

// Config configures a Server. Its zero value works.
type Config struct {
	// Handler, if set, is asked first for every statement; see Handler.
	Handler Handler
	// Logger receives session events (never a password). nil discards them.
	Logger *slog.Logger
	// ServerName is sent in ERROR tokens. "" means "tdsserver".
	ServerName string
	// MaxMessageSize bounds one request (all its packets); a larger one
	// closes the session. 0 means 4 MiB.
	MaxMessageSize int
}

// SPIDs of user sessions: SQL Server starts them at 51; they are smallints.
const (
	firstSPID = 51
	maxSPID   = 0x7FFF
)

// Server is a TDS test double. Its methods are safe for concurrent use.
type Server struct {
	cfg        Config
	log        *slog.Logger
	name       string
	maxMessage int
	store      store
	hang       atomic.Bool
	tranSeq    atomic.Uint64
	wg         sync.WaitGroup // accept loops and session goroutines

	mu        sync.Mutex // protects following fields
	closed    bool
	listeners map[net.Listener]struct{}
	addr      net.Addr
	sessions  map[int]*Session
	hung      map[net.Conn]struct{}
	lastSPID  int
}

// New returns a server that serves nothing until Serve or Start.
func New(cfg Config) *Server {
	s := &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		name:       cfg.ServerName,
		maxMessage: cfg.MaxMessageSize,
		listeners:  make(map[net.Listener]struct{}),
		sessions:   make(map[int]*Session),
		hung:       make(map[net.Conn]struct{}),
		lastSPID:   firstSPID - 1,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.name == "" {
		s.name = "tdsserver"
	}
	if s.maxMessage <= 0 {
		s.maxMessage = defaultMaxMessage
	}
	return s
}

// Serve accepts connections on ln until Close, then returns ErrServerClosed.
// Any net.Listener works (the lab listens inside a network namespace). Serve
// may run on several listeners at once; Close closes them all.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.register(ln); err != nil {
		return err
	}
	defer s.wg.Done()
	return s.acceptLoop(ln)
}

// Start listens on a TCP address (for example "127.0.0.1:0") and serves it in
// a goroutine that Close stops. Addr reports the bound address on return.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("tdsserver: %w", err)
	}
	if err := s.register(ln); err != nil {
		return err
	}
	go func() {
		defer s.wg.Done()
		_ = s.acceptLoop(ln)
	}()
	return nil
}

// register records ln and counts its accept loop in wg.
func (s *Server) register(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.addr = ln.Addr()
	s.wg.Add(1)
	return nil
}

func (s *Server) acceptLoop(ln net.Listener) error {
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			return fmt.Errorf("tdsserver: accept: %w", err)
		}
		backoff = 5 * time.Millisecond
		s.accept(c)
	}
}

func (s *Server) accept(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = c.Close()
		return
	}
	if s.hang.Load() {
		s.hung[c] = struct{}{}
		s.log.Debug("tdsserver: accepted and hung", "remote", c.RemoteAddr().String())
		return
	}
	spid, ok := s.allocSPIDLocked()
	if !ok {
		s.log.Warn("tdsserver: no free SPID, refusing connection")
		_ = c.Close()
		return
	}
	sess := newSession(s, c, spid)
	s.sessions[spid] = sess
	s.wg.Add(2)
	go sess.readLoop()
	go sess.serve()
}

// allocSPIDLocked hands out SPIDs in increasing order from 51, wrapping at
// 32767 and skipping live ones, so a new session never reuses a recent SPID.
func (s *Server) allocSPIDLocked() (int, bool) {
	for range maxSPID - firstSPID + 1 {
		s.lastSPID++
		if s.lastSPID > maxSPID {
			s.lastSPID = firstSPID
		}
		if _, used := s.sessions[s.lastSPID]; !used {
			return s.lastSPID, true
		}
	}
	return 0, false
}

func (s *Server) forget(sess *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[sess.spid] == sess {
		delete(s.sessions, sess.spid)
	}
	sess.log.Debug("tdsserver: session ended")
}

func (s *Server) session(spid int) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[spid]
}

func (s *Server) liveSessions() []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		out = append(out, sess)
	}
	return out
}

// Addr returns the address of the most recently added listener, or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// DSN returns DSNFor(Addr).
func (s *Server) DSN() string {
	return DSNFor(fmt.Sprint(s.Addr()))
}

// DSNFor returns a go-mssqldb URL for a server reached at addr (host:port,
// for example through a proxy) with a dummy login, database test and
// encryption disabled (the double does not speak TLS).
func DSNFor(addr string) string {
	return "sqlserver://sa:pw@" + addr + "?database=test&encrypt=disable"
}

// Close stops every listener and session, including hung connections, and
// waits for all of the server's goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	lns := make([]net.Listener, 0, len(s.listeners))
	for ln := range s.listeners {
		lns = append(lns, ln)
	}
	hung := s.takeHungLocked()
	s.mu.Unlock()
	if first {
		s.log.Debug("tdsserver: closing")
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	for _, c := range hung {
		_ = c.Close()
	}
	for _, sess := range s.liveSessions() {
		sess.close(false)
	}
	s.wg.Wait()
	return nil
}

func (s *Server) takeHungLocked() []net.Conn {
	out := make([]net.Conn, 0, len(s.hung))
	for c := range s.hung {
		out = append(out, c)
	}
	clear(s.hung)
	return out
}

// Sessions lists the live sessions ordered by SPID. A session disappears
// from the list once its goroutines have let go of it.
func (s *Server) Sessions() []SessionInfo {
	sessions := s.liveSessions()
	out := make([]SessionInfo, len(sessions))
	for i, sess := range sessions {
		out[i] = sess.info()
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.SPID - b.SPID })
	return out
}

// SessionCount returns the number of live sessions.
func (s *Server) SessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// TableIDs returns a copy of the ids in table, in insertion order, so tests
// can check invariants (such as "inserted exactly once") without a query.
func (s *Server) TableIDs(table string) []int64 { return s.store.ids(table) }
