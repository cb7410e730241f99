package webhookfeed

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedkit"
)

// MaxBody is the largest request body a Handler reads.
const MaxBody = 64 << 10

// Config configures a Handler. Notifier and one of Token, HMACKey or
// Insecure are required; for every other field the zero value picks the
// documented default, and a negative duration is an error.
type Config struct {
	// Notifier receives the events, synchronously from the request's
	// goroutine, through detect.Accept: when it is a detect.Acceptor (a
	// *pool.Pool is), its verdict decides the answer. Required; a nil
	// pointer in the interface is refused too.
	Notifier detect.Notifier
	// Token enables "Authorization: Bearer <Token>".
	Token string
	// HMACKey enables signed requests (SignatureHeader, TimestampHeader).
	HMACKey []byte
	// RequirePath accepts only signatures bound to the request's method
	// and path (SignRequestPath); false accepts SignRequest's too.
	RequirePath bool
	// Insecure accepts unauthenticated requests, from loopback peers with
	// a loopback Host only (localhost, 127.0.0.0/8, [::1]), that carry no
	// proxy header (Forwarded, X-Forwarded-*, X-Real-IP). For tests and
	// loopback-only listeners; not for a listener behind a reverse proxy,
	// even one on the same host (its peer address is loopback for every
	// client it forwards).
	Insecure bool
	// MaxSkew is how far a signed request's timestamp may be from now;
	// signatures seen within it are rejected as replays. 0 = 5 minutes.
	MaxSkew time.Duration
	// TunnelLabel is the Alertmanager label holding the tunnel id.
	// "" = "tunnel".
	TunnelLabel string
	// FiringState and ResolvedState map Alertmanager alert status.
	// 0 = detect.Down and detect.Up.
	FiringState, ResolvedState detect.State
	// Logger gets rejections. nil = discard.
	Logger *slog.Logger
	// Now is the clock for signature skew and replay checks. nil = time.Now.
	Now func() time.Time
}

const defaultMaxSkew = 5 * time.Minute

// maxAnswer bounds the reason in a 4xx answer (and its log line), in bytes.
const maxAnswer = 200

// check validates c and fills in the defaults.
func (c Config) check() (Config, error) {
	if feedkit.IsNil(c.Notifier) {
		// A typed nil (a (*pool.Pool)(nil)) is not == nil, and would
		// panic on the first event, far from the mistake.
		return c, fmt.Errorf("webhookfeed: Config.Notifier is nil (%T)", c.Notifier)
	}
	if c.Token == "" && len(c.HMACKey) == 0 && !c.Insecure {
		return c, errors.New("webhookfeed: Config needs Token or HMACKey (or Insecure: true for unauthenticated use)")
	}
	for _, f := range []struct {
		name string
		st   detect.State
	}{{"FiringState", c.FiringState}, {"ResolvedState", c.ResolvedState}} {
		if _, err := f.st.MarshalText(); f.st != 0 && err != nil {
			return c, fmt.Errorf("webhookfeed: Config.%s: invalid alert state %d", f.name, int(f.st))
		}
	}
	if c.MaxSkew < 0 {
		return c, errors.New("webhookfeed: Config.MaxSkew is negative")
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = defaultMaxSkew
	}
	if c.TunnelLabel == "" {
		c.TunnelLabel = "tunnel"
	}
	if c.FiringState == 0 {
		c.FiringState = detect.Down
	}
	if c.ResolvedState == 0 {
		c.ResolvedState = detect.Up
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Stats are a Handler's counters since New.
type Stats struct {
	Requests     uint64 // requests received
	Events       uint64 // events the Notifier took
	Refused      uint64 // events the Notifier refused (detect.Accept returned an error)
	Ignored      uint64 // Alertmanager alerts skipped (no tunnel label, unknown status)
	Unauthorized uint64 // 401: missing or wrong token or signature, skewed timestamp
	Replayed     uint64 // 409: signature already seen
	Rejected     uint64 // 400, 403, 405, 413, 415, 422
}
