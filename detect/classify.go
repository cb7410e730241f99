package detect

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
