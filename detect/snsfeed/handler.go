package snsfeed

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedkit"
)

// Handler is an http.Handler for an SNS HTTP(S) subscription whose topic
// carries CloudWatch TunnelState alarms. It is safe for concurrent use and
// owns no goroutine: everything happens on the request's goroutine,
// including the Notifier call and the outbound GETs of certificates and
// SubscribeURLs (bounded by Config.FetchTimeout each).
//
// Responses: 200 for every authentic message, with a one-line text body
// saying what was done (event, not taken, ignored, duplicate, confirmed); 405, 415,
// 413, 400 and 403 for refused requests (SNS does not retry a 4xx); 503
// when the signing certificate could not be fetched and 502 when a
// confirmation failed (SNS retries those). Error bodies are one short
// line of printable ASCII; a 5xx's is a fixed text (the details are
// logged). See Stats for the counters.
type Handler struct {
	s    *settings
	v    *verifier
	seen *seenSet // nil: no deduplication
	rlog *feedkit.RateLog
	c    counters
}

// New checks cfg and returns a Handler. A bad cfg is an error naming the
// field.
func New(cfg Config) (*Handler, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	h := &Handler{s: s, v: newVerifier(s), rlog: feedkit.NewRateLog(s.Logger, s.LogInterval, s.Now)}
	if s.SeenIDs > 0 {
		h.seen = newSeenSet(s.SeenIDs)
	}
	if e := s.Emulator; e != nil {
		s.Logger.Warn("snsfeed: Config.Emulator is set: verification is relaxed for a local SNS emulator; never in production",
			"hosts", e.Hosts, "allow_http", e.AllowHTTP, "ignore_cert_expiry", e.IgnoreCertExpiry, "empty_subject_unsigned", e.EmptySubjectUnsigned)
	}
	return h, nil
}

// Stats returns the counters.
func (h *Handler) Stats() Stats { return h.c.stats() }

// Server returns an *http.Server for h on addr with the timeouts an SNS
// endpoint needs: a slow or silent client cannot hold a goroutine for long,
// and a request still has time for a certificate fetch and a confirmation
// (2 × FetchTimeout). ReadHeaderTimeout 5s, ReadTimeout 10s, WriteTimeout
// 2 × FetchTimeout + 5s, IdleTimeout 60s, MaxHeaderBytes 16 KiB. Serve it
// with TLS (ListenAndServeTLS): SNS delivers to https endpoints.
func (h *Handler) Server(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      2*h.s.FetchTimeout + 5*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	h.c.received.Add(1)
	if rej := h.serve(rw, r); rej != nil {
		h.c.rejected[rej.reason].Add(1)
		h.rlog.Log(slog.LevelWarn, rej.reason.String(), "snsfeed: request refused",
			"status", rej.code, "reason", rej.reason.String(), "detail", rej.msg, "remote", r.RemoteAddr)
		reply(rw, rej.code, rej.publicText())
	}
}

// serve checks the request in order of cost, cheapest first: nothing is
// fetched for a message from a topic not in Config.Topics, nor for one
// outside MaxAge.
func (h *Handler) serve(rw http.ResponseWriter, r *http.Request) *rejection {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		return reject(ReasonMethod, http.StatusMethodNotAllowed, "method %s not allowed, use POST", quote(r.Method))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "text/plain" && mt != "application/json") {
			return reject(ReasonContentType, http.StatusUnsupportedMediaType,
				"Content-Type %s not accepted (SNS sends text/plain or application/json)", quote(ct))
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, h.s.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return reject(ReasonTooLarge, http.StatusRequestEntityTooLarge, "body larger than %d bytes", h.s.MaxBody)
		}
		return reject(ReasonMalformed, http.StatusBadRequest, "reading the body failed")
	}
	e, err := parseEnvelope(body)
	if err != nil {
		return reject(ReasonMalformed, http.StatusBadRequest, "%v", err)
	}
	if ht := r.Header.Get("x-amz-sns-message-type"); ht != "" && ht != e.Type {
		return reject(ReasonMalformed, http.StatusBadRequest, "header x-amz-sns-message-type %s disagrees with Type %s", quote(ht), quote(e.Type))
	}
	if !h.s.topics[e.TopicArn] {
		return reject(ReasonTopic, http.StatusForbidden, "topic %s is not accepted here", quote(e.TopicArn))
	}
	if h.s.MaxAge > 0 {
		if age := h.s.Now().Sub(e.at); age > h.s.MaxAge || age < -h.s.MaxAge {
			return reject(ReasonExpired, http.StatusBadRequest, "message Timestamp %s is %v from now (limit %v)",
				quote(e.Timestamp), age.Round(time.Second), h.s.MaxAge)
		}
	}
	if rej := h.v.verify(r.Context(), e, sourceOf(r.RemoteAddr)); rej != nil {
		return rej
	}
	// The message is authentic from here on.
	if h.seen != nil && !h.seen.claim(e.MessageId) {
		h.c.duplicates.Add(1)
		h.rlog.Log(slog.LevelInfo, "duplicate", "snsfeed: redelivered message ignored", "message_id", e.MessageId, "topic", e.TopicArn)
		reply(rw, http.StatusOK, "duplicate: message already handled")
		return nil
	}
	rej := h.handle(r.Context(), rw, e)
	if rej != nil && h.seen != nil {
		h.seen.release(e.MessageId) // let SNS's retry through
	}
	return rej
}

// handle acts on an authentic message.
func (h *Handler) handle(ctx context.Context, rw http.ResponseWriter, e *envelope) *rejection {
	switch e.Type {
	case typeSubscribe:
		arn, rej := h.confirm(ctx, e)
		if rej != nil {
			return rej
		}
		h.c.confirmations.Add(1)
		h.s.Logger.Info("snsfeed: subscription confirmed", "topic", e.TopicArn, "subscription", arn)
		reply(rw, http.StatusOK, "subscription confirmed")
	case typeUnsubscribe:
		h.c.unsubscribes.Add(1)
		h.s.Logger.Warn("snsfeed: this endpoint was unsubscribed; no events will arrive from the topic (not resubscribing)", "topic", e.TopicArn)
		reply(rw, http.StatusOK, "unsubscribe noted; not resubscribing")
	case typeNotification:
		d, err := h.s.decide(e)
		if err != nil {
			return reject(ReasonMessage, http.StatusBadRequest, "%v", err)
		}
		if !d.ok {
			key := "ignored"
			if d.unmapped {
				key = "unmapped"
				h.c.unmapped.Add(1)
			} else {
				h.c.ignored.Add(1)
			}
			h.rlog.Log(slog.LevelInfo, key, "snsfeed: alarm without event", "why", d.why, "topic", e.TopicArn)
			reply(rw, http.StatusOK, "ignored: "+d.why)
			return nil
		}
		// The receiver's verdict decides the answer (detect.Accept): a
		// *pool.Pool refuses an event older than its EventMaxAge (2
		// minutes by default, measured on At, the alarm's
		// StateChangeTime), a Down dated before the last Up it applied,
		// and tunnels it does not serve. Such an event is not "event",
		// and not a 5xx either: SNS would retry it, and every retry would
		// be older still. It is a 200 saying "not taken", so SNS stops.
		if err := detect.Accept(h.s.Notifier, d.ev); err != nil {
			h.c.refused.Add(1)
			h.rlog.Log(slog.LevelWarn, "refused", "snsfeed: event not taken by the receiver", "event", d.ev.String(), "at", d.ev.At, "err", err)
			reply(rw, http.StatusOK, "not taken: "+d.ev.String()+": "+err.Error())
			return nil
		}
		h.c.events.Add(1)
		h.s.Logger.Info("snsfeed: event", "tunnel", d.ev.Tunnel, "state", d.ev.State.String(), "at", d.ev.At, "source", d.ev.Source)
		reply(rw, http.StatusOK, "event: "+d.ev.String())
	}
	return nil
}
