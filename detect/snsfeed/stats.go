package snsfeed

import (
	"fmt"
	"sync/atomic"
)

// Reason says why a request was refused. Each has its own counter in
// Stats.Rejected and its own log rate limit.
type Reason int

const (
	ReasonMethod           Reason = iota // 405: not POST
	ReasonContentType                    // 415: not text/plain or application/json
	ReasonTooLarge                       // 413: body over MaxBody
	ReasonMalformed                      // 400: not an SNS message (JSON, Type, fields, Timestamp)
	ReasonTopic                          // 403: TopicArn not in Config.Topics
	ReasonExpired                        // 400: Timestamp further than MaxAge from now
	ReasonSignatureVersion               // 400: SignatureVersion unknown or below the minimum
	ReasonCertURL                        // 403: SigningCertURL not https on an SNS host
	ReasonCertFetch                      // 503: the certificate could not be fetched (SNS retries)
	ReasonCert                           // 403: the certificate is unusable (not RSA, expired, chain)
	ReasonSignature                      // 403: Signature wrong or not base64
	ReasonSubscribeURL                   // 403: SubscribeURL off SNS or not for this topic
	ReasonConfirm                        // 502: fetching the SubscribeURL failed (SNS retries)
	ReasonMessage                        // 400: a Notification whose Message is not a CloudWatch alarm
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonMethod: "method", ReasonContentType: "content-type", ReasonTooLarge: "too-large",
	ReasonMalformed: "malformed", ReasonTopic: "topic", ReasonExpired: "expired",
	ReasonSignatureVersion: "signature-version", ReasonCertURL: "cert-url", ReasonCertFetch: "cert-fetch",
	ReasonCert: "cert", ReasonSignature: "signature", ReasonSubscribeURL: "subscribe-url",
	ReasonConfirm: "confirm", ReasonMessage: "message",
}

// String returns a short name such as "signature" or "topic".
func (r Reason) String() string {
	if r >= 0 && r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Stats are a Handler's counters since New.
type Stats struct {
	Received      uint64            // requests
	Events        uint64            // events the Notifier took
	Refused       uint64            // authentic alarms whose event the Notifier refused (answered 200 "not taken")
	Ignored       uint64            // authentic alarms without an event: INSUFFICIENT_DATA, another metric, an alarm that fires on "up"
	Unmapped      uint64            // authentic TunnelState alarms that Config.Tunnels maps to no tunnel
	Duplicates    uint64            // redeliveries of a MessageId already handled (answered 200, no event)
	Confirmations uint64            // subscriptions confirmed (SubscribeURL fetched)
	Unsubscribes  uint64            // UnsubscribeConfirmations received (nothing is resubscribed)
	Rejected      map[Reason]uint64 // refused requests by reason; reasons never seen are absent
}

// RejectedTotal is the sum of Rejected.
func (s Stats) RejectedTotal() uint64 {
	var n uint64
	for _, v := range s.Rejected {
		n += v
	}
	return n
}

type counters struct {
	received, events, refused, ignored, unmapped, duplicates, confirmations, unsubscribes atomic.Uint64
	rejected                                                                              [numReasons]atomic.Uint64
}

func (c *counters) stats() Stats {
	s := Stats{
		Received: c.received.Load(), Events: c.events.Load(), Refused: c.refused.Load(), Ignored: c.ignored.Load(),
		Unmapped: c.unmapped.Load(), Duplicates: c.duplicates.Load(),
		Confirmations: c.confirmations.Load(), Unsubscribes: c.unsubscribes.Load(),
		Rejected: map[Reason]uint64{},
	}
	for r := range numReasons {
		if n := c.rejected[r].Load(); n > 0 {
			s.Rejected[r] = n
		}
	}
	return s
}

// rejection is a refusal: its reason, HTTP status and a short message for
// the response body and the log.
type rejection struct {
	reason Reason
	code   int
	msg    string
	forget bool // a certificate fetch that never started: not remembered as its URL's result
}

// publicText is what the response body says: msg for a 4xx, which speaks
// of the request itself, and a fixed line for a 5xx, whose details (a
// resolver's error, socket addresses) are for the log only.
func (r *rejection) publicText() string {
	switch {
	case r.code < 500:
		return r.msg
	case r.reason == ReasonCertFetch:
		return "the signing certificate could not be fetched; try again later"
	case r.reason == ReasonConfirm:
		return "the subscription could not be confirmed; try again later"
	}
	return "temporary failure; try again later"
}

func (r *rejection) Error() string { return r.msg }

func reject(reason Reason, code int, format string, args ...any) *rejection {
	return &rejection{reason: reason, code: code, msg: fmt.Sprintf(format, args...)}
}
