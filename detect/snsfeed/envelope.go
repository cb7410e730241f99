package snsfeed

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SNS message types (the envelope's "Type" and the
// x-amz-sns-message-type header).
const (
	typeNotification = "Notification"
	typeSubscribe    = "SubscriptionConfirmation"
	typeUnsubscribe  = "UnsubscribeConfirmation"
)

// envelope is the JSON body SNS POSTs to an HTTP(S) subscriber. Fields we
// neither sign nor use (UnsubscribeURL, MessageAttributes) are not decoded.
// Subject is a pointer: "absent" and "empty" sign differently.
type envelope struct {
	Type             string
	MessageId        string
	Token            string
	TopicArn         string
	Subject          *string
	Message          string
	SubscribeURL     string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string

	at time.Time // Timestamp, parsed
}

// maxIDLen bounds MessageId (a UUID) and Token (SNS's are 256 hex digits).
const maxIDLen = 1024

// parseEnvelope decodes body and checks that every field the message's
// type needs is there. It does not authenticate anything.
func parseEnvelope(body []byte) (*envelope, error) {
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("body is not an SNS JSON message: %s", jsonErr(err))
	}
	switch e.Type {
	case typeNotification, typeSubscribe, typeUnsubscribe:
	case "":
		return nil, errors.New(`missing "Type"`)
	default:
		return nil, fmt.Errorf(`unknown "Type" %s`, quote(e.Type))
	}
	need := []struct{ name, v string }{
		{"MessageId", e.MessageId}, {"TopicArn", e.TopicArn}, {"Timestamp", e.Timestamp},
		{"SignatureVersion", e.SignatureVersion}, {"Signature", e.Signature}, {"SigningCertURL", e.SigningCertURL},
	}
	if e.Type != typeNotification {
		need = append(need, struct{ name, v string }{"Token", e.Token}, struct{ name, v string }{"SubscribeURL", e.SubscribeURL})
	}
	for _, f := range need {
		if f.v == "" {
			return nil, fmt.Errorf("missing %q", f.name)
		}
	}
	if len(e.MessageId) > maxIDLen || len(e.Token) > maxIDLen {
		return nil, errors.New("MessageId or Token too long")
	}
	at, err := time.Parse(time.RFC3339Nano, e.Timestamp)
	if err != nil {
		return nil, fmt.Errorf(`bad "Timestamp" %s`, quote(e.Timestamp))
	}
	e.at = at
	return &e, nil
}

// stringToSign builds what SNS signs: "key\nvalue\n" for a fixed list of
// keys in byte order. A Notification signs Message, MessageId, Subject
// (only if present), Timestamp, TopicArn, Type; the two confirmations sign
// Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type. See
// "Verifying the signatures of Amazon SNS messages" (testdata/README.md).
func (e *envelope) stringToSign(emptySubjectUnsigned bool) []byte {
	var b strings.Builder
	add := func(k, v string) {
		b.WriteString(k)
		b.WriteByte('\n')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	add("Message", e.Message)
	add("MessageId", e.MessageId)
	if e.Type == typeNotification {
		if e.Subject != nil && (*e.Subject != "" || !emptySubjectUnsigned) {
			add("Subject", *e.Subject)
		}
	} else {
		add("SubscribeURL", e.SubscribeURL)
	}
	add("Timestamp", e.Timestamp)
	if e.Type != typeNotification {
		add("Token", e.Token)
	}
	add("TopicArn", e.TopicArn)
	add("Type", e.Type)
	return []byte(b.String())
}

// jsonErr shortens a json error to its kind, without echoing input.
func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s has the wrong type", quote(te.Field))
	}
	return "invalid JSON"
}
