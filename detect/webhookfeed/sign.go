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
// a Handler with HMACKey key verifies them.
func SignRequest(r *http.Request, body, key []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	r.Header.Set(TimestampHeader, ts)
	r.Header.Set(SignatureHeader, "sha256="+hex.EncodeToString(mac(key, ts, body)))
}

func mac(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// checkSignature returns 0 or the status and reason of a rejection.
func (w *Handler) checkSignature(r *http.Request, body []byte) (int, string) {
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
	if !hmac.Equal(got, mac(w.cfg.HMACKey, ts, body)) {
		return http.StatusUnauthorized, "signature mismatch"
	}
	now := w.cfg.Now()
	if d := now.Sub(time.Unix(sec, 0)); d > w.cfg.MaxSkew || d < -w.cfg.MaxSkew {
		return http.StatusUnauthorized, fmt.Sprintf("timestamp off by %v (max %v)", d.Round(time.Second), w.cfg.MaxSkew)
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
			if now.Sub(t) > 2*w.cfg.MaxSkew {
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
