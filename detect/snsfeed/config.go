package snsfeed

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedkit"
)

// Defaults of the Config fields, used when a field is 0.
const (
	DefaultMaxBody       = 64 << 10 // the webhook's cap; SNS envelopes are ~2 KiB
	DefaultMaxAge        = 5 * time.Minute
	DefaultFetchTimeout  = 5 * time.Second
	DefaultCertCacheSize = 16
	DefaultSeenIDs       = 4096
	DefaultLogInterval   = time.Minute
)

// Config configures a Handler. Notifier, Topics and Tunnels are required;
// for every other field 0 (or nil) means the default given in its doc. A
// negative number turns a limit off where the field says so and is an
// error elsewhere.
type Config struct {
	// Notifier receives the events, synchronously on the request's
	// goroutine (a *pool.Pool never blocks there). Required.
	Notifier detect.Notifier

	// Topics are the SNS topic ARNs whose messages are accepted, e.g.
	// "arn:aws:sns:eu-west-1:123456789012:vpn-tunnel-state". Messages
	// from any other topic get 403 before any certificate is fetched.
	// Required.
	Topics []string

	// Tunnels maps an alarm to a tunnel id. A key is either
	// "<VpnId>/<TunnelIpAddress>" (the alarm's metric dimensions, e.g.
	// "vpn-0abc1234def567890/203.0.113.10") or an alarm name; the
	// dimensions are tried first. A value is a tunnel id as the pool's
	// Config.Tunnels knows it; "*" means every tunnel. Alarms that map to
	// nothing are ignored and counted (Stats.Unmapped). Required.
	Tunnels map[string]string

	// MaxBody is the largest request body read, in bytes. 0 means
	// DefaultMaxBody (64 KiB). Negative is an error.
	MaxBody int64

	// MaxAge rejects a message whose envelope Timestamp is further than
	// this from now, in the past or (clock skew) in the future. It must
	// cover SNS's retries: the default HTTP delivery policy retries for
	// about a minute, and a retry keeps the original Timestamp. 0 means
	// DefaultMaxAge (5 minutes). Negative: no age check.
	MaxAge time.Duration

	// MinSignatureVersion is the oldest SNS SignatureVersion accepted:
	// 1 (SHA1withRSA) or 2 (SHA256withRSA; set the topic attribute
	// SignatureVersion to 2 first). 0 means 1. Other values are errors.
	MinSignatureVersion int

	// Roots, if set, must be the root of the signing certificate's chain
	// (intermediates may follow the leaf in the served PEM). nil means no
	// chain check: the certificate is trusted because it was fetched over
	// verified HTTPS from an SNS host (see the package doc).
	Roots *x509.CertPool

	// CertCacheSize bounds how many signing certificates are kept, by
	// normalized URL; only certificates a signature verified with count.
	// 0 means DefaultCertCacheSize (16). Negative is an error.
	CertCacheSize int

	// FetchTimeout bounds each outbound GET (a certificate, a
	// SubscribeURL). 0 means DefaultFetchTimeout (5s). Negative is an
	// error.
	FetchTimeout time.Duration

	// Fetch performs those GETs. nil means HTTPS with system roots, TLS
	// 1.2 or later, no redirects, FetchTimeout and a 64 KiB response
	// cap. Tests inject a fake; URLs are checked before Fetch is called.
	Fetch FetchFunc

	// SeenIDs is how many MessageIds are remembered so that a
	// redelivered message (SNS retries keep the MessageId) is answered
	// 200 without a second event. 0 means DefaultSeenIDs (4096).
	// Negative: no deduplication.
	SeenIDs int

	// LogInterval: at most one log line per rejection reason per interval,
	// with a count of the lines suppressed, so a flood cannot flood the
	// log. 0 means DefaultLogInterval (1 minute). Negative is an error.
	LogInterval time.Duration

	// Logger receives the log lines. nil: no logging. No line holds a
	// confirmation token.
	Logger *slog.Logger

	// Now is the clock for MaxAge and certificate validity. nil means
	// time.Now.
	Now func() time.Time

	// Emulator relaxes checks for a local SNS emulator. Tests only: nil in
	// production.
	Emulator *Emulator
}

// Emulator lets a test talk to a local SNS emulator such as GoAws, which
// serves its certificate and SubscribeURL on its own address over plain
// HTTP. Never set it in production: each field weakens verification.
type Emulator struct {
	// Hosts are "host:port" addresses (e.g. "127.0.0.1:4100") that may
	// serve signing certificates and SubscribeURLs besides the AWS SNS
	// hosts.
	Hosts []string
	// AllowHTTP accepts http:// URLs on Hosts (never on AWS hosts).
	AllowHTTP bool
	// IgnoreCertExpiry skips the certificate's validity-period check
	// (GoAws v0.4.5's certificate expires 5 seconds after it starts).
	IgnoreCertExpiry bool
	// EmptySubjectUnsigned leaves an empty "Subject" out of a
	// Notification's string to sign, as GoAws does. AWS omits the key
	// instead (an SNS Subject cannot be empty), so by default an empty
	// Subject is signed like any present one.
	EmptySubjectUnsigned bool
}

// settings is a Config with its defaults applied and its maps copied.
type settings struct {
	Config
	topics  map[string]bool
	tunnels map[string]string
	hosts   map[string]bool
}

func (c Config) settings() (*settings, error) {
	if feedkit.IsNil(c.Notifier) { // a (*pool.Pool)(nil) too: it would panic on the first event
		return nil, fmt.Errorf("snsfeed: Config.Notifier is nil (%T)", c.Notifier)
	}
	if len(c.Topics) == 0 {
		return nil, errors.New("snsfeed: Config.Topics is empty (list the SNS topic ARNs to accept)")
	}
	if len(c.Tunnels) == 0 {
		return nil, errors.New("snsfeed: Config.Tunnels is empty (map alarms to tunnel ids)")
	}
	s := &settings{Config: c, topics: map[string]bool{}, tunnels: map[string]string{}, hosts: map[string]bool{}}
	for i, t := range c.Topics {
		if !validARN(t) {
			return nil, fmt.Errorf("snsfeed: Config.Topics[%d] %q is not an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>)", i, t)
		}
		s.topics[t] = true
	}
	for k, v := range c.Tunnels {
		if k == "" || hasControl(k) {
			return nil, fmt.Errorf("snsfeed: Config.Tunnels has a bad key %q", k)
		}
		id := v
		if v == "" {
			return nil, fmt.Errorf("snsfeed: Config.Tunnels[%q] is empty (use \"*\" for every tunnel)", k)
		}
		if err := (detect.Event{Tunnel: id, State: detect.Down}).Validate(); err != nil {
			return nil, fmt.Errorf("snsfeed: Config.Tunnels[%q]: %w", k, err)
		}
		s.tunnels[k] = id
	}
	var err error
	if s.MaxBody, err = orDefault("MaxBody", c.MaxBody, DefaultMaxBody, false); err != nil {
		return nil, err
	}
	if s.MaxAge, err = orDefault("MaxAge", c.MaxAge, DefaultMaxAge, true); err != nil {
		return nil, err
	}
	if s.FetchTimeout, err = orDefault("FetchTimeout", c.FetchTimeout, DefaultFetchTimeout, false); err != nil {
		return nil, err
	}
	if s.LogInterval, err = orDefault("LogInterval", c.LogInterval, DefaultLogInterval, false); err != nil {
		return nil, err
	}
	if s.CertCacheSize, err = orDefault("CertCacheSize", c.CertCacheSize, DefaultCertCacheSize, false); err != nil {
		return nil, err
	}
	if s.SeenIDs, err = orDefault("SeenIDs", c.SeenIDs, DefaultSeenIDs, true); err != nil {
		return nil, err
	}
	switch c.MinSignatureVersion {
	case 0:
		s.MinSignatureVersion = 1
	case 1, 2:
	default:
		if c.MinSignatureVersion < 0 {
			return nil, errors.New("snsfeed: Config.MinSignatureVersion is negative")
		}
		return nil, fmt.Errorf("snsfeed: Config.MinSignatureVersion %d is not 1 or 2", c.MinSignatureVersion)
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Fetch == nil {
		s.Fetch = httpFetch(s.FetchTimeout)
	}
	if e := c.Emulator; e != nil {
		cp := *e
		s.Emulator = &cp
		for i, h := range e.Hosts {
			host, port, err := net.SplitHostPort(h)
			if err != nil || host == "" || port == "" {
				return nil, fmt.Errorf("snsfeed: Config.Emulator.Hosts[%d] %q is not host:port", i, h)
			}
			s.hosts[strings.ToLower(h)] = true
		}
	}
	return s, nil
}

// orDefault applies the project's rule for numbers: 0 is def, negative is
// -1 ("off") where offOK, and an error naming the field elsewhere.
func orDefault[T int | int64 | time.Duration](field string, v, def T, offOK bool) (T, error) {
	switch {
	case v == 0:
		return def, nil
	case v < 0 && offOK:
		return -1, nil
	case v < 0:
		return 0, fmt.Errorf("snsfeed: Config.%s is negative", field)
	}
	return v, nil
}

// validARN accepts arn:<partition>:sns:<region>:<account>:<topic>.
func validARN(s string) bool {
	p := strings.Split(s, ":")
	if len(p) != 6 || p[0] != "arn" || p[2] != "sns" || hasControl(s) || len(s) > 256 {
		return false
	}
	for _, f := range p {
		if f == "" {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
