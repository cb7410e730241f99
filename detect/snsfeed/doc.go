// Package snsfeed is an AWS-native tunnel feed: an http.Handler that
// receives CloudWatch alarm notifications delivered by Amazon SNS and turns
// the alarms on an AWS Site-to-Site VPN's TunnelState metric into detect
// events for a Notifier (a *pool.Pool).
//
// The setup it expects (examples/awsvpn has CloudFormation and CLI for it):
// one CloudWatch alarm per tunnel on AWS/VPN TunnelState with the
// dimensions VpnId and TunnelIpAddress, "TunnelState < 1" (so ALARM means
// down), whose ALARM and OK actions publish to an SNS topic with an HTTPS
// subscription pointing at this handler.
//
//	h, err := snsfeed.New(snsfeed.Config{
//		Notifier: p, // *pool.Pool
//		Topics:   []string{"arn:aws:sns:eu-west-1:123456789012:vpn-tunnel-state"},
//		Tunnels: map[string]string{
//			"vpn-0abc1234def567890/203.0.113.10": "aws-1",
//			"vpn-0abc1234def567890/203.0.113.20": "aws-2",
//		},
//	})
//	srv := h.Server(":8443")
//	err = srv.ListenAndServeTLS("cert.pem", "key.pem")
//
// What happens to each SNS message type:
//
//   - SubscriptionConfirmation for an accepted topic: the handler GETs its
//     SubscribeURL, which confirms the subscription (Stats.Confirmations).
//   - UnsubscribeConfirmation: logged and counted; nothing is resubscribed
//     (someone removed the subscription on purpose, or the topic is gone).
//   - Notification: Message is the CloudWatch alarm. NewStateValue ALARM
//     is a Down event, OK an Up event; INSUFFICIENT_DATA is no event (the
//     metric stopped, which says nothing about the tunnel; define the
//     alarms with TreatMissingData "breaching" so that a tunnel that stops
//     reporting raises ALARM). The tunnel id comes from Config.Tunnels,
//     keyed by "<VpnId>/<TunnelIpAddress>" or by the alarm name; At is the
//     alarm's StateChangeTime; Source is "sns:<alarm name>". Alarms on
//     other metrics, alarms that fire when TunnelState is high, and alarms
//     mapped to no tunnel give no event.
//
// The answer is the Notifier's verdict (detect.Accept). A *pool.Pool
// refuses an event older than its EventMaxAge (2 minutes by default,
// measured on At, the alarm's StateChangeTime), a Down dated before the
// last Up it applied for the tunnel (stale: a replay), tunnels it does
// not serve, and events after Close. A refused event is answered 200
// "not taken: <reason>" (Stats.Refused), never "event", and never a 5xx:
// SNS would retry it, and each retry is older still.
//
// Retry timing against the pool's age limit: SNS retries a delivery that
// got a 5xx (or no answer) by the topic's delivery policy; the default
// HTTP/S policy makes 3 retries 20 seconds apart, so the last arrives
// about a minute after the first try, within EventMaxAge and MaxAge. A
// custom delivery policy whose retries run past EventMaxAge (measured
// from StateChangeTime, which CloudWatch sets a few seconds before it
// publishes) delivers late retries that the pool refuses as too old:
// raise the pool's EventMaxAge with it, or keep the retries inside it.
//
// Limits: bodies over MaxBody (64 KiB) get 413; a message whose Timestamp
// is more than MaxAge (5 minutes) from now gets 400; redeliveries of a
// MessageId already handled get 200 and no second event. Refusals are
// logged at most once per reason per LogInterval, and counted (Stats).
// Serve the handler with (*Handler).Server or with the same timeouts: a
// ReadHeaderTimeout and ReadTimeout of seconds so that slow clients cannot
// hold connections, and a WriteTimeout above 2 × FetchTimeout, since a
// request may fetch a certificate and then confirm a subscription.
//
// # Security
//
// Authenticated: every message's SNS signature (SignatureVersion 1,
// SHA1withRSA, or 2, SHA256withRSA; Config.MinSignatureVersion can refuse
// 1), checked against the certificate at its SigningCertURL, which must be
// an https URL on sns.<region>.amazonaws.com (or .amazonaws.com.cn in
// China, GovCloud regions included), at the path SNS publishes its
// certificates at, /SimpleNotificationService-<hex>.pem, and whose
// response must be PEM certificates only. Nothing is fetched from anywhere
// else, and SubscribeURLs follow the same host rule. The certificate is trusted
// because it comes over verified TLS from an AWS SNS host; no chain to a
// root is required unless Config.Roots is set. Its validity period is
// checked on every use. Only topics in
// Config.Topics are accepted, before any certificate is fetched.
//
// What a forged message can make the handler do: anyone who knows a topic
// ARN can send messages with a fresh Timestamp and any signature. Such a
// message causes at most one certificate fetch per normalized URL
// (lower-case host) per minute, whatever that fetch gave (a failure is
// remembered for the minute too; SNS's default retries, 20 seconds
// apart, then all fall inside it, so a genuine message whose certificate
// fetch failed may be lost); at most 4 fetches per source address (IPv6:
// per /64) and 64 distinct URLs per minute in all, 4 at a time. Only a
// certificate that a signature verified with is kept (CertCacheSize of
// them), so forged messages cannot push a genuine certificate out; a
// fetched certificate that verified nothing is forgotten after the minute.
// Until a certificate has verified a signature (the first message after
// start, or after AWS rotates its certificate), forged messages naming
// slow URLs can hold the 4 fetch slots, and a genuine message that needs
// a fetch then gets a 503, which SNS retries.
// Answers to refused requests speak only of the request: a 503 or 502 says
// only that a fetch failed, with the details (resolver and socket
// addresses in a DNS error) in the log.
//
// Not authenticated: who sent the HTTP request (anyone can POST; only
// signed messages from your topics act), and who published: any principal
// allowed to publish to the topic can publish a signed alarm-shaped
// message. Let only the alarms publish (a topic policy for the
// cloudwatch.amazonaws.com service principal, and no IAM grant of
// sns:Publish on the topic; examples/awsvpn has one). A captured message
// is refused as a duplicate while its MessageId is remembered (SeenIDs),
// and as expired after MaxAge; in between (after a restart, or once
// SeenIDs newer messages pushed its id out) it is handled again. A
// *pool.Pool then refuses it as stale when it is an ALARM older than the
// last OK the pool applied for the tunnel, or older than EventMaxAge;
// anything else that gets through is only a hint the pool checks before it
// cuts work in progress. TLS keeps messages from being captured.
//
// Deploy: serve HTTPS with a certificate from a public CA (SNS does not
// deliver to self-signed endpoints), list exactly your topic ARNs, set the
// topic's SignatureVersion to 2 and MinSignatureVersion to 2, restrict the
// topic's publishers, and keep Config.Emulator nil: it exists for tests
// against local emulators such as GoAws and weakens each check it names.
package snsfeed
