package detect

import (
	"context"
	"database/sql/driver"
	"io"
	"net"
	"syscall"
)

// Verdict is a classifier's judgement of an error returned by a driver.
type Verdict int

const (
	// Continue: no opinion; the next classifier in the chain decides.
	Continue Verdict = iota
	// Alive: an ordinary error (a SQL error, a constraint violation, the
	// caller's own cancellation); the connection is fine.
	Alive
	// Lost: the connection is gone. A statement in flight has an unknown
	// outcome: it may or may not have run on the server.
	Lost
	// LostUnsent: the connection is gone and the request was never sent
	// (or the server is known not to have run it): safe to retry.
	LostUnsent
)

func (v Verdict) String() string {
	switch v {
	case Continue:
		return "continue"
	case Alive:
		return "alive"
	case Lost:
		return "lost"
	case LostUnsent:
		return "lost-unsent"
	}
	return "Verdict(?)"
}

// IsLost reports whether v says the connection is gone.
func (v Verdict) IsLost() bool { return v == Lost || v == LostUnsent }

// Classifier judges an error. It must be safe for concurrent use and must
// not block. A nil error is never passed.
type Classifier interface {
	Classify(err error) Verdict
}

// ClassifierFunc adapts a function to Classifier.
type ClassifierFunc func(err error) Verdict

// Classify calls f(err).
func (f ClassifierFunc) Classify(err error) Verdict { return f(err) }

// ErrorRule judges one error value by itself, without looking at the errors
// it wraps; the walker behind WithRules and Classify does that. A rule
// returns:
//
//   - Continue: no opinion about this value; the walker looks at what it
//     wraps.
//   - Alive or Lost: the value speaks for everything it wraps; the walker
//     does not look inside.
//   - LostUnsent: the value proves the request never reached the server
//     (driver.ErrBadConn, mssql.RetryableError, pgconn's SafeToRetry, a dial
//     error). The walker still looks inside: if all it finds there is
//     ordinary (Alive: the caller's own cancellation, a SQL error) the
//     verdict is Alive; otherwise LostUnsent, even when what is inside is a
//     lost-connection error such as ECONNRESET from the failed write.
//
// A rule must be cheap, must not block and must be safe for concurrent use.
type ErrorRule func(err error) Verdict

// Limits of the error-tree walk. errors.Is has none, so a cyclic Unwrap
// hangs it; ours stops. Real driver chains are under ten values deep.
const (
	maxWalkDepth = 32
	maxWalkNodes = 128
)

// WithRules returns a Classifier that walks the whole tree of err (Unwrap()
// error and Unwrap() []error, as errors.Is does) and judges every value with
// rules, in order, then with the generic rules (see Classify). The verdicts of
// the values are combined so that lost-connection evidence anywhere wins:
//
//	Lost > LostUnsent > Alive > Continue
//
// Lost wins over LostUnsent because LostUnsent is a claim about one request
// ("it never left"), while a Lost value elsewhere in the same chain (say a
// read error joined to a driver.ErrBadConn) means some request may have
// reached the server: when in doubt, Lost. It returns Continue when no value
// in the tree was recognised, so that a later classifier decides.
//
// Driver adapters build their Classifier with it, so that their rules and the
// generic ones combine in one walk (a PostgreSQL unique violation joined to
// an ECONNRESET is Lost, not Alive). A rule that panics ends the walk; the
// verdict so far is returned (Continue if nothing was found).
func WithRules(rules ...ErrorRule) Classifier {
	rs := make([]ErrorRule, 0, len(rules))
	for _, r := range rules {
		if r != nil {
			rs = append(rs, r)
		}
	}
	return ClassifierFunc(func(err error) Verdict {
		w := walker{rules: rs, budget: maxWalkNodes}
		return w.classify(err)
	})
}

// generic is what Classify asks last: the driver-independent network rules.
// It never returns Continue: an error it does not recognise is Alive, an
// ordinary error on a healthy connection.
//
// The generic rules, per error value:
//
//   - nil: Alive (never passed; handled defensively).
//   - driver.ErrBadConn, or a value whose Is method matches it: LostUnsent.
//     database/sql retries exactly these, and its driver contract says a
//     driver returns ErrBadConn only when the server cannot have run the
//     statement (database/sql/driver/driver.go, ErrBadConn doc).
//   - context.Canceled, context.DeadlineExceeded (the values themselves, as
//     drivers return them when the caller's context ends): Alive. A
//     caller's deadline is not evidence that the path is down: a slow query
//     hits it too, and resetting the pool on every timeout would discard
//     healthy connections. The driver already drops the one connection it
//     interrupted: go-mssqldb marks it bad because DeadlineExceeded is a
//     net.Error (mssql.go:274-293, checkBadConn), pgx closes it
//     (pgconn/errors.go:164-178 turns the socket deadline it set into the
//     context error), mysql closes it (packets.go:53-59). Known gap: a query
//     stuck on a blackholed path until the caller's deadline is therefore
//     Alive; liveness checks and tunnel events catch that case, not this.
//     net's own cancellation value (a dial the caller cancelled, Is
//     context.Canceled) is Alive too.
//   - io.EOF, io.ErrUnexpectedEOF, net.ErrClosed (our own Sever closed the
//     socket): Lost.
//   - *net.OpError with Op "dial": LostUnsent (with the LostUnsent rule of
//     ErrorRule: a cancelled dial or a bad address inside is Alive). No
//     connection existed, so nothing can have been sent; refused, timed out
//     and unreachable dials all say the path or server is down.
//   - *net.OpError with any other Op (read, write, close): Lost. A failed
//     write may have sent part of the request; a failed read may follow a
//     complete one.
//   - *net.DNSError: LostUnsent (resolution precedes any connection).
//   - *net.AddrError, *net.ParseError, net.UnknownNetworkError,
//     net.InvalidAddrError: Alive (configuration errors, not a lost path).
//   - syscall errnos ECONNRESET, ECONNABORTED, EPIPE, ETIMEDOUT,
//     EHOSTUNREACH, ENETUNREACH, ENETDOWN, ENETRESET, EHOSTDOWN, ENOTCONN,
//     ESHUTDOWN: Lost (ETIMEDOUT here is TCP_USER_TIMEOUT or keepalive
//     expiry on an open connection). ECONNREFUSED: LostUnsent, because
//     TCP reports it only to connect(2) (an RST answering the SYN), so no
//     connection ever existed. Inside a dial OpError all of these become
//     LostUnsent.
//   - any other net.Error (socket deadline "i/o timeout", TLS over a dead
//     socket): Lost.
//
// generic recovers from a panicking Unwrap or Is method of a foreign error
// type and returns the verdict found so far (Alive if none).
func generic(err error) Verdict {
	w := walker{budget: maxWalkNodes}
	if v := w.classify(err); v != Continue {
		return v
	}
	return Alive
}

// rank orders verdicts for combining the values of one error tree.
func rank(v Verdict) int {
	switch v {
	case Alive:
		return 1
	case LostUnsent:
		return 2
	case Lost:
		return 3
	}
	return 0
}

// stronger returns the verdict that wins when both are found in one tree.
func stronger(a, b Verdict) Verdict {
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// walker walks one error tree. It lives on the stack of one Classify call:
// no allocation on the common paths.
type walker struct {
	rules  []ErrorRule
	budget int     // nodes left to visit
	found  Verdict // best verdict so far, returned if a method panics
}

func (w *walker) classify(err error) (v Verdict) {
	if err == nil {
		return Alive
	}
	defer func() {
		if recover() != nil {
			v = w.found
		}
	}()
	return w.walk(err, 0)
}

func (w *walker) walk(err error, depth int) Verdict {
	if err == nil || w.budget <= 0 || depth > maxWalkDepth {
		return Continue
	}
	w.budget--
	v := w.node(err)
	switch v {
	case Alive, Lost:
		w.found = stronger(w.found, v)
		return v
	}
	var sub Verdict
	switch x := err.(type) {
	case interface{ Unwrap() error }:
		sub = w.walk(x.Unwrap(), depth+1)
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			sub = stronger(sub, w.walk(e, depth+1))
			if sub == Lost {
				break
			}
		}
	}
	if v == LostUnsent {
		// The value proves the request never left; only "nothing but an
		// ordinary error inside" changes that.
		if sub == Alive {
			v = Alive
		}
		w.found = stronger(w.found, v)
		return v
	}
	return sub
}

// node judges one value: the caller's rules first, then the built-in ones.
func (w *walker) node(err error) Verdict {
	for _, r := range w.rules {
		if v := r(err); v != Continue {
			return v
		}
	}
	return genericRule(err)
}

// genericRule holds the driver-independent rules documented on generic.
func genericRule(err error) Verdict {
	switch err {
	case driver.ErrBadConn:
		return LostUnsent
	case context.Canceled, context.DeadlineExceeded:
		return Alive
	case io.EOF, io.ErrUnexpectedEOF, net.ErrClosed:
		return Lost
	}
	switch e := err.(type) {
	case syscall.Errno:
		return errnoVerdict(e)
	case *net.OpError:
		if e == nil {
			return Continue
		}
		if e.Op == "dial" {
			return LostUnsent
		}
		return Lost
	case *net.DNSError:
		return LostUnsent
	case *ConnectError:
		return LostUnsent
	case *net.AddrError, *net.ParseError, net.UnknownNetworkError, net.InvalidAddrError:
		return Alive
	}
	if x, ok := err.(interface{ Is(error) bool }); ok {
		if x.Is(driver.ErrBadConn) {
			return LostUnsent
		}
		if x.Is(context.Canceled) {
			return Alive
		}
	}
	if _, ok := err.(net.Error); ok {
		return Lost
	}
	return Continue
}

// errnoVerdict: see generic. Values not listed (EMFILE, EACCES...) are local
// problems, not a lost path: Continue.
func errnoVerdict(e syscall.Errno) Verdict {
	switch e {
	case syscall.ECONNREFUSED:
		return LostUnsent
	case syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN, syscall.ENETRESET,
		syscall.EHOSTDOWN, syscall.ENOTCONN, syscall.ESHUTDOWN:
		return Lost
	}
	return Continue
}

// safeClassify asks c, treating a panic (or an out-of-range verdict) as no
// opinion: a buggy user override must not take the pool down.
func safeClassify(c Classifier, err error) (v Verdict) {
	defer func() {
		if recover() != nil {
			v = Continue
		}
	}()
	v = c.Classify(err)
	if rank(v) == 0 { // Continue or an out-of-range value
		return Continue
	}
	return v
}

// Classify judges err with cs in order (nil entries are skipped) and
// returns the first verdict that is not Continue; if none has an opinion,
// the generic rules decide (see the package doc). A classifier that panics
// has no opinion. It never returns Continue: an error nobody recognises is
// Alive, an ordinary error on a healthy connection.
func Classify(err error, cs ...Classifier) Verdict {
	for _, c := range cs {
		if c == nil {
			continue
		}
		if v := safeClassify(c, err); v != Continue {
			return v
		}
	}
	return generic(err)
}

// ConnectError marks an error returned while opening a connection (dial,
// TLS, login): no statement can have been sent on a connection that never
// opened. A connector wraps its Connect errors in it so that classifiers can
// tell "the server refused or vanished during login" (LostUnsent) from the
// same error in the middle of a statement (Lost). Under the ErrorRule rules
// it proves "unsent": an ordinary error inside (a login failure, a wrong
// database name, the caller's cancellation) keeps the verdict Alive.
type ConnectError struct {
	Err error
}

func (e *ConnectError) Error() string {
	if e.Err == nil {
		return "detect: connect failed"
	}
	return e.Err.Error()
}

// Unwrap returns the wrapped error.
func (e *ConnectError) Unwrap() error { return e.Err }
