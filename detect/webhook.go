package detect

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Webhook request headers for HMAC signing (see Webhook).
const (
	SignatureHeader = "X-Flapguard-Signature"
	TimestampHeader = "X-Flapguard-Timestamp"
)

// MaxWebhookBody is the largest request body a Webhook reads.
const MaxWebhookBody = 64 << 10

// WebhookConfig configures a Webhook. Notifier and one of Token, HMACKey or
// Insecure are required; every other zero value picks the documented
// default.
type WebhookConfig struct {
	// Notifier receives the events, synchronously from the request's
	// goroutine. Required.
	Notifier Notifier
	// Token enables "Authorization: Bearer <Token>".
	Token string
	// HMACKey enables signed requests (SignatureHeader, TimestampHeader).
	HMACKey []byte
	// Insecure accepts unauthenticated requests. Only for tests and
	// loopback-only listeners.
	Insecure bool
	// MaxSkew is how far a signed request's timestamp may be from now;
	// signatures seen within it are rejected as replays. 0 = 5 minutes.
	MaxSkew time.Duration
	// TunnelLabel is the Alertmanager label holding the tunnel id.
	// "" = "tunnel".
	TunnelLabel string
	// FiringState and ResolvedState map Alertmanager alert status.
	// 0 = Down and Up.
	FiringState, ResolvedState State
	// Logger gets rejections. nil = discard.
	Logger *slog.Logger
	// Now is the clock for signature skew and replay checks. nil = time.Now.
	Now func() time.Time
}

// WebhookEvent is the plain JSON body a Webhook accepts:
//
//	{"tunnel":"aws-1","state":"down","at":"2026-11-25T19:30:52Z","source":"tunnelhook","id":"4f1c…"}
//
// tunnel is required ("*" means every tunnel); state is "down", "up" or
// "rekey"; at (RFC 3339) and source are optional; id is an optional nonce
// that makes otherwise identical signed requests distinct. Unknown fields
// are rejected.
type WebhookEvent struct {
	Tunnel string     `json:"tunnel"`
	State  string     `json:"state"`
	At     *time.Time `json:"at,omitempty"`
	Source string     `json:"source,omitempty"`
	ID     string     `json:"id,omitempty"`
}

// WebhookStats are the webhook's counters since NewWebhook.
type WebhookStats struct {
	Requests     uint64 // requests received
	Events       uint64 // events delivered
	Ignored      uint64 // Alertmanager alerts skipped (no tunnel label, unknown status)
	Unauthorized uint64 // 401: missing or wrong token or signature, skewed timestamp
	Replayed     uint64 // 409: signature already seen
	Rejected     uint64 // 400, 405, 413, 422
}

// Webhook is an http.Handler that turns POSTed tunnel-state reports into
// events. It accepts two bodies:
//
//   - the plain JSON of WebhookEvent;
//   - a Prometheus Alertmanager v4 webhook payload ("version":"4" and
//     "alerts"): each alert's tunnel id is its TunnelLabel label (alerts
//     without it are ignored, with the reason logged); status "firing" is
//     FiringState (Down), "resolved" is ResolvedState (Up); with no status,
//     an endsAt of 0001-01-01T00:00:00Z or in the future means firing. When
//     one payload has both firing and resolved alerts for a tunnel, firing
//     wins: the tunnel gets one Down.
//
// Authentication (required unless Insecure):
//
//   - "Authorization: Bearer <Token>" (Alertmanager: http_config.authorization);
//   - or SignatureHeader "sha256=<hex HMAC-SHA256(HMACKey, ts + "." + body)>"
//     with TimestampHeader ts = Unix seconds; ts must be within MaxSkew of
//     now, and a signature is accepted once (replays get 409). SignRequest
//     produces both headers.
//
// Both are compared in constant time. Bearer tokens cannot stop a replay:
// serve over TLS or loopback.
//
// Responses: 204 when at least one event was delivered; 405 wrong method;
// 401 bad auth; 409 replay; 413 body over 64 KiB; 400 bad JSON or state;
// 422 valid payload that yields no event. Error bodies are one line of text.
// Serve it with the timeouts of (*Webhook).Server.
type Webhook struct {
	cfg   WebhookConfig
	token [32]byte // sha256 of Token: constant-time compare without a length leak
	log   *slog.Logger
	now   func() time.Time
	skew  time.Duration
	label string

	requests, events, ignored, unauthorized, replayed, rejected atomic.Uint64

	mu   sync.Mutex // protects following fields
	seen map[[32]byte]time.Time
}

// maxSeen bounds the replay cache. Only requests with a valid signature
// enter it, so only a key holder can fill it; when full, signed requests
// get 503 until entries expire.
const maxSeen = 1 << 16

// NewWebhook checks cfg and returns a Webhook.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if cfg.Notifier == nil {
		return nil, errors.New("detect: WebhookConfig.Notifier is nil")
	}
	if cfg.Token == "" && len(cfg.HMACKey) == 0 && !cfg.Insecure {
		return nil, errors.New("detect: WebhookConfig needs Token or HMACKey (or Insecure: true for unauthenticated use)")
	}
	for _, st := range []State{cfg.FiringState, cfg.ResolvedState} {
		if st != 0 && !st.valid() {
			return nil, fmt.Errorf("detect: WebhookConfig: invalid alert state %d", int(st))
		}
	}
	cfg.HMACKey = bytes.Clone(cfg.HMACKey)
	w := &Webhook{
		cfg:   cfg,
		log:   cfg.Logger,
		now:   cfg.Now,
		skew:  orDuration(cfg.MaxSkew, 5*time.Minute),
		label: cfg.TunnelLabel,
		seen:  make(map[[32]byte]time.Time),
	}
	if cfg.Token != "" {
		w.token = sha256.Sum256([]byte(cfg.Token))
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.label == "" {
		w.label = "tunnel"
	}
	if w.cfg.FiringState == 0 {
		w.cfg.FiringState = Down
	}
	if w.cfg.ResolvedState == 0 {
		w.cfg.ResolvedState = Up
	}
	return w, nil
}

// Server returns an *http.Server for w on addr with the timeouts a
// webhook needs: a slow or silent client cannot hold a goroutine for long.
// ReadHeaderTimeout 5s, ReadTimeout 10s, WriteTimeout 10s, IdleTimeout 60s,
// MaxHeaderBytes 16 KiB.
func (w *Webhook) Server(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           w,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// Stats returns the counters.
func (w *Webhook) Stats() WebhookStats {
	return WebhookStats{
		Requests: w.requests.Load(), Events: w.events.Load(), Ignored: w.ignored.Load(),
		Unauthorized: w.unauthorized.Load(), Replayed: w.replayed.Load(), Rejected: w.rejected.Load(),
	}
}

// SignRequest sets TimestampHeader and SignatureHeader on r for body, as
// a Webhook with HMACKey key verifies them.
func SignRequest(r *http.Request, body, key []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	r.Header.Set(TimestampHeader, ts)
	r.Header.Set(SignatureHeader, "sha256="+hex.EncodeToString(webhookMAC(key, ts, body)))
}

func webhookMAC(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// ServeHTTP implements http.Handler.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.requests.Add(1)
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		w.fail(rw, r, http.StatusMethodNotAllowed, &w.rejected, "method %s not allowed, use POST", r.Method)
		return
	}
	bearer := w.bearerOK(r)
	signed := r.Header.Get(SignatureHeader) != ""
	if !bearer && !w.cfg.Insecure && (!signed || len(w.cfg.HMACKey) == 0) {
		rw.Header().Set("WWW-Authenticate", `Bearer realm="flapguard"`)
		w.fail(rw, r, http.StatusUnauthorized, &w.unauthorized, "missing or wrong credentials")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxWebhookBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			w.fail(rw, r, http.StatusRequestEntityTooLarge, &w.rejected, "body larger than %d bytes", MaxWebhookBody)
			return
		}
		w.fail(rw, r, http.StatusBadRequest, &w.rejected, "reading body: %v", err)
		return
	}
	if !bearer && signed && len(w.cfg.HMACKey) > 0 {
		if code, msg := w.checkSignature(r, body); code != 0 {
			ctr := &w.unauthorized
			if code == http.StatusConflict {
				ctr = &w.replayed
			}
			w.fail(rw, r, code, ctr, "%s", msg)
			return
		}
	}
	evs, ignored, err := w.decode(body)
	if err != nil {
		w.fail(rw, r, http.StatusBadRequest, &w.rejected, "%v", err)
		return
	}
	w.ignored.Add(uint64(len(ignored)))
	for _, why := range ignored {
		w.log.Info("webhook: alert ignored", "reason", why, "remote", r.RemoteAddr)
	}
	if len(evs) == 0 {
		why := "payload has no alerts"
		if len(ignored) > 0 {
			why = ignored[0]
		}
		w.fail(rw, r, http.StatusUnprocessableEntity, &w.rejected, "no event: %s", why)
		return
	}
	for _, ev := range evs {
		w.events.Add(1)
		w.cfg.Notifier.Notify(ev)
	}
	rw.WriteHeader(http.StatusNoContent)
}

func (w *Webhook) bearerOK(r *http.Request) bool {
	if w.cfg.Token == "" {
		return false
	}
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) < len(p) || !strings.EqualFold(h[:len(p)], p) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(p):])))
	return subtle.ConstantTimeCompare(got[:], w.token[:]) == 1
}

// checkSignature returns 0 or the status and reason of a rejection.
func (w *Webhook) checkSignature(r *http.Request, body []byte) (int, string) {
	ts := r.Header.Get(TimestampHeader)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return http.StatusUnauthorized, "missing or bad " + TimestampHeader
	}
	sig, ok := strings.CutPrefix(r.Header.Get(SignatureHeader), "sha256=")
	got, err := hex.DecodeString(sig)
	if !ok || err != nil || len(got) != sha256.Size {
		return http.StatusUnauthorized, "bad " + SignatureHeader + " (want sha256=<64 hex digits>)"
	}
	if !hmac.Equal(got, webhookMAC(w.cfg.HMACKey, ts, body)) {
		return http.StatusUnauthorized, "signature mismatch"
	}
	now := w.now()
	if d := now.Sub(time.Unix(sec, 0)); d > w.skew || d < -w.skew {
		return http.StatusUnauthorized, fmt.Sprintf("timestamp off by %v (max %v)", d.Round(time.Second), w.skew)
	}
	var key [32]byte
	copy(key[:], got)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.seen[key]; dup {
		return http.StatusConflict, "replayed request (signature already used)"
	}
	if len(w.seen) >= maxSeen {
		for k, t := range w.seen {
			if now.Sub(t) > 2*w.skew {
				delete(w.seen, k)
			}
		}
		if len(w.seen) >= maxSeen {
			return http.StatusServiceUnavailable, "replay cache full"
		}
	}
	w.seen[key] = now
	return 0, ""
}

func (w *Webhook) fail(rw http.ResponseWriter, r *http.Request, code int, ctr *atomic.Uint64, format string, args ...any) {
	ctr.Add(1)
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
	w.log.Warn("webhook: request rejected", "status", code, "reason", msg, "remote", r.RemoteAddr)
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(code)
	fmt.Fprintf(rw, "flapguard webhook: %d %s: %s\n", code, http.StatusText(code), msg)
}

// decode parses a plain or Alertmanager body into events that pass
// Validate, plus the reasons alerts were ignored.
func (w *Webhook) decode(body []byte) ([]Event, []string, error) {
	var probe struct {
		Version *string         `json:"version"`
		Alerts  json.RawMessage `json:"alerts"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, nil, fmt.Errorf("bad JSON: %v", err)
	}
	if probe.Alerts != nil || probe.Version != nil {
		if probe.Version == nil || *probe.Version != "4" {
			return nil, nil, errors.New(`unsupported Alertmanager payload: want "version":"4" with "alerts"`)
		}
		return w.decodeAlertmanager(body)
	}
	ev, err := decodePlain(body)
	if err != nil {
		return nil, nil, err
	}
	return []Event{ev}, nil, nil
}

func decodePlain(body []byte) (Event, error) {
	var in WebhookEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Event{}, fmt.Errorf("bad JSON: %v", err)
	}
	if dec.More() {
		return Event{}, errors.New("bad JSON: data after the object")
	}
	if in.Tunnel == "" {
		return Event{}, errors.New(`"tunnel" is required ("*" for every tunnel)`)
	}
	st, err := ParseState(in.State)
	if err != nil {
		return Event{}, fmt.Errorf(`bad "state": %q (want down, up or rekey)`, truncate(in.State, 32))
	}
	ev := Event{Tunnel: in.Tunnel, State: st, Source: "webhook"}
	if in.At != nil {
		ev.At = *in.At
	}
	if s := cleanSource(in.Source); s != "" {
		ev.Source += ":" + s
	}
	if err := ev.Validate(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

type amPayload struct {
	Alerts []struct {
		Status   string            `json:"status"`
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
		EndsAt   time.Time         `json:"endsAt"`
	} `json:"alerts"`
	Receiver string `json:"receiver"`
}

func (w *Webhook) decodeAlertmanager(body []byte) ([]Event, []string, error) {
	var p amPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, nil, fmt.Errorf("bad Alertmanager JSON: %v", err)
	}
	var (
		evs     []Event
		ignored []string
		index   = map[string]int{} // tunnel → position in evs
	)
	now := w.now()
	for i, a := range p.Alerts {
		tunnel, ok := a.Labels[w.label]
		if !ok || tunnel == "" {
			ignored = append(ignored, fmt.Sprintf("alert %d (%s) has no label %q", i, truncate(a.Labels["alertname"], 64), w.label))
			continue
		}
		var st State
		at := a.StartsAt
		switch {
		case a.Status == "firing":
			st = w.cfg.FiringState
		case a.Status == "resolved":
			st, at = w.cfg.ResolvedState, a.EndsAt
		case a.Status == "" && (a.EndsAt.IsZero() || a.EndsAt.After(now)):
			st = w.cfg.FiringState
		case a.Status == "":
			st, at = w.cfg.ResolvedState, a.EndsAt
		default:
			ignored = append(ignored, fmt.Sprintf("alert %d has unknown status %q", i, truncate(a.Status, 32)))
			continue
		}
		ev := Event{Tunnel: tunnel, State: st, At: at, Source: "webhook:alertmanager"}
		if err := ev.Validate(); err != nil {
			ignored = append(ignored, fmt.Sprintf("alert %d: %v", i, err))
			continue
		}
		if j, dup := index[tunnel]; dup {
			if st == w.cfg.FiringState {
				evs[j] = ev // firing wins within one payload
			}
			continue
		}
		index[tunnel] = len(evs)
		evs = append(evs, ev)
	}
	return evs, ignored, nil
}

// cleanSource keeps a short, printable source name from outside input.
func cleanSource(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 64 {
			break
		}
		if r >= 0x20 && r != 0x7f && r != '\ufffd' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
