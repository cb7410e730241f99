package webhookfeed

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedkit"
)

// Handler is an http.Handler that turns POSTed tunnel-state reports into
// events. It accepts two bodies:
//
//   - the plain JSON of Event;
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
//     with TimestampHeader ts = Unix seconds (SignRequest), or the same
//     bound to method and path, "sha256-path=<hex HMAC-SHA256(HMACKey,
//     ts + "." + METHOD + " " + path + "." + body)>" (SignRequestPath;
//     Config.RequirePath accepts only this one). A plain Event must then
//     carry an "id" (400 without).
//
// Both are compared in constant time. Bearer tokens cannot stop a replay:
// serve over TLS or loopback.
//
// The replay window, exactly: a signed request is accepted if its
// timestamp is within MaxSkew (5 minutes) of this process's clock, and
// its signature has not been accepted by this process in the last
// 2×MaxSkew (repeats get 409). The cache is per process and starts empty:
// a captured signed request can be replayed, within MaxSkew of its
// timestamp, to another instance that shares the key, or to this one
// after a restart. SignRequest's signature covers timestamp and body, not
// the URL: it is as valid on another endpoint that checks the same key;
// SignRequestPath's covers method and path too (not the host). Give each
// receiver its own key where that matters, and keep captured traffic out
// of reach (TLS).
//
// Requests must have Content-Type application/json; requests that only a
// web page in a browser would send are refused (see the package doc,
// Security).
//
// Responses: 204 when the Notifier took every event (detect.Accept: a
// *pool.Pool refuses events older than its EventMaxAge, stale ones and
// foreign tunnels); 200 with a line naming what was not taken when it took
// some of them; 422 when it took none, or the payload yields no event;
// 405 wrong method;
// 403 a browser page's request, or in Insecure mode a Host or peer that is
// not loopback or a request that came through a proxy; 415 not JSON; 401
// bad auth; 409 replay; 413 body over 64 KiB; 400 bad JSON or state.
// Error bodies are one line of
// text, at most 200 bytes of reason, with control characters escaped.
// Serve it with the timeouts of (*Handler).Server.
type Handler struct {
	cfg   Config
	token [32]byte // sha256 of Token: constant-time compare without a length leak
	log   *feedkit.RateLog

	requests, events, ignored, refused, unauthorized, replayed, rejected atomic.Uint64

	mu   sync.Mutex // protects following fields
	seen map[[32]byte]time.Time
}

// New checks cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	cfg.HMACKey = bytes.Clone(cfg.HMACKey)
	w := &Handler{cfg: cfg, seen: make(map[[32]byte]time.Time), log: feedkit.NewRateLog(cfg.Logger, time.Second, cfg.Now)}
	if cfg.Token != "" {
		w.token = sha256.Sum256([]byte(cfg.Token))
	}
	return w, nil
}

// Server returns an *http.Server for w on addr with the timeouts a
// webhook needs: a slow or silent client cannot hold a goroutine for long.
// ReadHeaderTimeout 5s, ReadTimeout 10s, WriteTimeout 10s, IdleTimeout 60s,
// MaxHeaderBytes 16 KiB.
func (w *Handler) Server(addr string) *http.Server {
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
func (w *Handler) Stats() Stats {
	return Stats{
		Requests: w.requests.Load(), Events: w.events.Load(), Ignored: w.ignored.Load(), Refused: w.refused.Load(),
		Unauthorized: w.unauthorized.Load(), Replayed: w.replayed.Load(), Rejected: w.rejected.Load(),
	}
}

// ServeHTTP implements http.Handler.
func (w *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.requests.Add(1)
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		w.fail(rw, r, http.StatusMethodNotAllowed, &w.rejected, fmt.Sprintf("method %s not allowed, use POST", r.Method))
		return
	}
	if code, msg := w.refuseBrowsers(r); code != 0 {
		w.fail(rw, r, code, &w.rejected, msg)
		return
	}
	bearer := w.bearerOK(r)
	signed := r.Header.Get(SignatureHeader) != ""
	if !bearer && !w.cfg.Insecure && (!signed || len(w.cfg.HMACKey) == 0) {
		rw.Header().Set("WWW-Authenticate", `Bearer realm="flapguard"`)
		w.fail(rw, r, http.StatusUnauthorized, &w.unauthorized, "missing or wrong credentials")
		return
	}
	body, err := feedkit.ReadBody(r.Body, MaxBody)
	if err != nil {
		if errors.Is(err, feedkit.ErrTooLarge) {
			rw.Header().Set("Connection", "close") // don't read the rest
			w.fail(rw, r, http.StatusRequestEntityTooLarge, &w.rejected, fmt.Sprintf("body larger than %d bytes", MaxBody))
			return
		}
		// The error may name sockets ("read tcp 10.0.0.2:443->…: i/o
		// timeout"): for the log, not for the client.
		w.fail(rw, r, http.StatusBadRequest, &w.rejected, "reading the body failed", "err", err.Error())
		return
	}
	checkSig := !bearer && signed && len(w.cfg.HMACKey) > 0
	var sig [32]byte
	if checkSig {
		s, code, msg := w.checkSignature(r, body)
		if code != 0 {
			w.fail(rw, r, code, &w.unauthorized, msg)
			return
		}
		sig = s
	}
	p, err := w.decode(body)
	if err != nil {
		w.fail(rw, r, http.StatusBadRequest, &w.rejected, err.Error())
		return
	}
	if checkSig {
		// Without an id, a down, up, down within one second signs the
		// same bytes twice and the second down would be taken for a replay.
		if p.plain && p.id == "" {
			w.fail(rw, r, http.StatusBadRequest, &w.rejected, `"id" is required in a signed request (a nonce, unique per request)`)
			return
		}
		if code, msg := w.firstUse(sig); code != 0 {
			ctr := &w.unauthorized
			if code == http.StatusConflict {
				ctr = &w.replayed
			}
			w.fail(rw, r, code, ctr, msg)
			return
		}
	}
	evs, ignored := p.events, p.ignored
	// One log line per request, however many alerts it had: the count
	// and the first reason.
	w.ignored.Add(uint64(len(ignored)))
	if len(evs) == 0 {
		why := "payload has no alerts"
		if len(ignored) > 0 {
			why = ignored[0]
		}
		w.fail(rw, r, http.StatusUnprocessableEntity, &w.rejected, "no event: "+why, "ignored", len(ignored))
		return
	}
	if len(ignored) > 0 {
		// The reason may quote an alertname: escaped, as in answers.
		w.log.Log(slog.LevelInfo, "alerts ignored", "webhook: alerts ignored", "ignored", len(ignored), "first", feedkit.Escape(ignored[0], maxAnswer), "remote", r.RemoteAddr)
	}
	// Each event goes through detect.Accept, so the answer is the
	// receiver's verdict: a *pool.Pool refuses events older than its
	// EventMaxAge, stale against the last UP it applied, or for tunnels
	// it does not serve, and the sender must not be told they were taken.
	var refused []error
	for _, ev := range evs {
		if err := detect.Accept(w.cfg.Notifier, ev); err != nil {
			w.refused.Add(1)
			refused = append(refused, err)
			continue
		}
		w.events.Add(1)
	}
	switch {
	case len(refused) == 0:
		rw.WriteHeader(http.StatusNoContent)
	case len(refused) == len(evs):
		w.fail(rw, r, http.StatusUnprocessableEntity, &w.rejected, "event not taken: "+refused[0].Error(), "refused", len(refused))
	default:
		// Some taken: a 2xx (a retry would repeat the taken ones), whose
		// body says which part was not.
		msg := feedkit.Escape(fmt.Sprintf("%d of %d events taken; not taken: %v", len(evs)-len(refused), len(evs), refused[0]), maxAnswer)
		w.log.Log(slog.LevelInfo, "events refused", "webhook: events not taken by the receiver", "refused", len(refused), "first", msg, "remote", r.RemoteAddr)
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Header().Set("X-Content-Type-Options", "nosniff")
		rw.WriteHeader(http.StatusOK)
		fmt.Fprintf(rw, "flapguard webhook: 200 OK: %s\n", msg)
	}
}

func (w *Handler) bearerOK(r *http.Request) bool {
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

// fail answers code with msg, counts the rejection in ctr and logs it
// (rate-limited per status) with attrs.
func (w *Handler) fail(rw http.ResponseWriter, r *http.Request, code int, ctr *atomic.Uint64, msg string, attrs ...any) {
	ctr.Add(1)
	// The reason may quote the request (an alertname, a JSON key): escape
	// it, so no control character or bidi override reaches the reader,
	// and keep it short.
	msg = feedkit.Escape(msg, maxAnswer)
	args := append([]any{"status", code, "reason", msg, "remote", r.RemoteAddr}, attrs...)
	w.log.Log(slog.LevelWarn, strconv.Itoa(code), "webhook: request rejected", args...)
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(code)
	fmt.Fprintf(rw, "flapguard webhook: %d %s: %s\n", code, http.StatusText(code), msg)
}
