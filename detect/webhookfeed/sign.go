package webhookfeed

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request headers for HMAC signing (see Handler).
const (
	SignatureHeader = "X-Flapguard-Signature"
	TimestampHeader = "X-Flapguard-Timestamp"
)

// maxSeen bounds the replay cache. Only requests with a valid signature
// enter it, so only a key holder can fill it; when full, signed requests
// get 503 until entries expire.
const maxSeen = 1 << 16

// SignRequest sets TimestampHeader and SignatureHeader on r for body, as
// a Handler with HMACKey key verifies them: "sha256=<hex HMAC-SHA256(key,
// ts + "." + body)>". The signature does not cover the URL; see
// SignRequestPath.
func SignRequest(r *http.Request, body, key []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	r.Header.Set(TimestampHeader, ts)
	r.Header.Set(SignatureHeader, sigV1+hex.EncodeToString(mac(key, ts, "", body)))
}

// SignRequestPath is SignRequest with the signature bound to r's method
// and path: "sha256-path=<hex HMAC-SHA256(key, ts + "." + METHOD + " " +
// path + "." + body)>", path as r.URL.EscapedPath(). A request signed so
// cannot be replayed against another endpoint that checks the same key.
// Handlers of this version accept both forms (Config.RequirePath refuses
// the unbound one); older ones know only SignRequest's, and a proxy that
// rewrites the path breaks this one.
func SignRequestPath(r *http.Request, body, key []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	r.Header.Set(TimestampHeader, ts)
	r.Header.Set(SignatureHeader, sigPath+hex.EncodeToString(mac(key, ts, boundTo(r), body)))
}

// The two forms of SignatureHeader.
const (
	sigV1   = "sha256="
	sigPath = "sha256-path="
)

// boundTo is what a path-bound signature covers besides timestamp and body.
func boundTo(r *http.Request) string { return r.Method + " " + r.URL.EscapedPath() }

// mac is HMAC-SHA256(key, ts + "." + [bound + "."] + body).
func mac(key []byte, ts, bound string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	if bound != "" {
		m.Write([]byte(bound))
		m.Write([]byte{'.'})
	}
	m.Write(body)
	return m.Sum(nil)
}

// checkSignature returns 0 or the status and reason of a rejection: the
// signature must match body and timestamp, and the timestamp be within
// MaxSkew of now.
func (w *Handler) checkSignature(r *http.Request, body []byte) (sig [sha256.Size]byte, code int, msg string) {
	ts := r.Header.Get(TimestampHeader)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return sig, http.StatusUnauthorized, "missing or bad " + TimestampHeader
	}
	header := r.Header.Get(SignatureHeader)
	bound := ""
	hexSig, ok := strings.CutPrefix(header, sigPath)
	if ok {
		bound = boundTo(r)
	} else if hexSig, ok = strings.CutPrefix(header, sigV1); ok && w.cfg.RequirePath {
		return sig, http.StatusUnauthorized, "this webhook requires a signature bound to the path (" + sigPath + "…, SignRequestPath)"
	}
	got, err := hex.DecodeString(hexSig)
	if !ok || err != nil || len(got) != sha256.Size {
		return sig, http.StatusUnauthorized, "bad " + SignatureHeader + " (want sha256=<64 hex digits> or sha256-path=<64 hex digits>)"
	}
	if !hmac.Equal(got, mac(w.cfg.HMACKey, ts, bound, body)) {
		return sig, http.StatusUnauthorized, "signature mismatch"
	}
	if d := w.cfg.Now().Sub(time.Unix(sec, 0)); d > w.cfg.MaxSkew || d < -w.cfg.MaxSkew {
		return sig, http.StatusUnauthorized, fmt.Sprintf("timestamp off by %v (max %v)", d.Round(time.Second), w.cfg.MaxSkew)
	}
	copy(sig[:], got)
	return sig, 0, ""
}

// firstUse records a verified signature and returns 0, or 409 if this
// process has seen it before (a replay), or 503 if the cache is full.
//
// A signature is remembered for 2×MaxSkew after it was first seen: its
// timestamp is within MaxSkew of that moment, so by then the timestamp
// check alone refuses it. Expired entries are swept when the cache is
// full.
func (w *Handler) firstUse(sig [sha256.Size]byte) (int, string) {
	now := w.cfg.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.seen[sig]; dup {
		return http.StatusConflict, "replayed request (signature already used)"
	}
	if len(w.seen) >= maxSeen {
		for k, t := range w.seen {
			if now.Sub(t) > 2*w.cfg.MaxSkew {
				delete(w.seen, k)
			}
		}
		if len(w.seen) >= maxSeen {
			return http.StatusServiceUnavailable, "replay cache full"
		}
	}
	w.seen[sig] = now
	return 0, ""
}
