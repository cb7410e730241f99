package snsfeed

import (
	"net/http"
	"strings"
	"testing"
)

// The strings to sign, written out by hand from the AWS guide's lists.
func TestStringToSign(t *testing.T) {
	tests := []struct {
		name  string
		m     msg
		empty bool
		want  string
	}{
		{"notification with Subject", msg{
			"Type": "Notification", "MessageId": "id", "TopicArn": "arn", "Subject": "subj", "Message": "line1\nline2",
			"Timestamp": "ts", "SignatureVersion": "1", "Signature": "s", "SigningCertURL": "c", "UnsubscribeURL": "u",
			"Token": "ignored", "SubscribeURL": "ignored",
		}, false, "Message\nline1\nline2\nMessageId\nid\nSubject\nsubj\nTimestamp\nts\nTopicArn\narn\nType\nNotification\n"},
		{"notification without Subject", msg{
			"Type": "Notification", "MessageId": "id", "TopicArn": "arn", "Message": "m", "Timestamp": "ts",
		}, false, "Message\nm\nMessageId\nid\nTimestamp\nts\nTopicArn\narn\nType\nNotification\n"},
		{"notification with empty Subject", msg{
			"Type": "Notification", "MessageId": "id", "TopicArn": "arn", "Subject": "", "Message": "m", "Timestamp": "ts",
		}, false, "Message\nm\nMessageId\nid\nSubject\n\nTimestamp\nts\nTopicArn\narn\nType\nNotification\n"},
		{"notification with empty Subject, GoAws style", msg{
			"Type": "Notification", "MessageId": "id", "TopicArn": "arn", "Subject": "", "Message": "m", "Timestamp": "ts",
		}, true, "Message\nm\nMessageId\nid\nTimestamp\nts\nTopicArn\narn\nType\nNotification\n"},
		{"subscription confirmation", msg{
			"Type": "SubscriptionConfirmation", "MessageId": "id", "Token": "tok", "TopicArn": "arn", "Message": "m",
			"SubscribeURL": "https://s/?a=b", "Timestamp": "ts", "Subject": "not signed",
		}, false, "Message\nm\nMessageId\nid\nSubscribeURL\nhttps://s/?a=b\nTimestamp\nts\nToken\ntok\nTopicArn\narn\nType\nSubscriptionConfirmation\n"},
		{"unsubscribe confirmation", msg{
			"Type": "UnsubscribeConfirmation", "MessageId": "id", "Token": "tok", "TopicArn": "arn", "Message": "m",
			"SubscribeURL": "https://s/", "Timestamp": "ts",
		}, false, "Message\nm\nMessageId\nid\nSubscribeURL\nhttps://s/\nTimestamp\nts\nToken\ntok\nTopicArn\narn\nType\nUnsubscribeConfirmation\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			full := tc.m.with("SignatureVersion", "1", "Signature", "s", "SigningCertURL", "c", "Timestamp", "2026-03-14T11:59:58Z")
			e, err := parseEnvelope(full.json())
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Replace(tc.want, "Timestamp\nts\n", "Timestamp\n2026-03-14T11:59:58Z\n", 1)
			if got := string(e.stringToSign(tc.empty)); got != want {
				t.Fatalf("string to sign\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// GoAws sends "Subject":"" and signs without it: accepted only with the
// emulator option.
func TestEmptySubjectNeedsEmulatorOption(t *testing.T) {
	p := getPKI(t)
	m := notification(alarmJSON("ALARM", "2026-03-14T11:59:57+0000")).without("Subject").signedBy(p.key).with("Subject", "")
	r := newRig(t, nil)
	r.wantRejected(r.post(m.json(), ""), http.StatusForbidden, ReasonSignature)
	r = newRig(t, func(c *Config) { c.Emulator = &Emulator{EmptySubjectUnsigned: true} })
	if rec := r.post(m.json(), ""); rec.Code != http.StatusOK || len(r.got()) != 1 {
		t.Fatalf("status %d, events %v: %s", rec.Code, r.got(), rec.Body)
	}
}

func TestParseEnvelopeNeverEchoesRawInput(t *testing.T) {
	_, err := parseEnvelope([]byte(`{"Type":"Notif\u0007ication\u001b[2J"}`))
	if err == nil || strings.ContainsAny(err.Error(), "\x07\x1b") {
		t.Fatalf("err = %v", err)
	}
	_, err = parseEnvelope([]byte("{\"Type\": \x1b]0;pwned\x07"))
	if err == nil || strings.ContainsAny(err.Error(), "\x07\x1b") || strings.Contains(err.Error(), "pwned") {
		t.Fatalf("err = %v", err)
	}
}
