package snsfeed

import (
	"errors"
	"net/url"
	"path"
	"strings"
)

// maxURLLen bounds a SigningCertURL or SubscribeURL from a message.
const maxURLLen = 2048

// checkURL accepts https URLs on an AWS SNS host, and the emulator's hosts
// when the Config says so. SigningCertURL and SubscribeURL both pass it
// before anything is fetched: a message cannot make the handler GET an
// arbitrary address (server-side request forgery), and the certificate's
// authenticity rests on TLS to an SNS host.
func (s *settings) checkURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("missing")
	}
	if len(raw) > maxURLLen {
		return nil, errors.New("too long")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Opaque != "" || u.User != nil || u.Fragment != "" || u.Host == "" {
		return nil, errors.New("not a plain URL (userinfo, fragment or no host)")
	}
	if s.hosts[strings.ToLower(u.Host)] {
		if u.Scheme == "https" || (u.Scheme == "http" && s.Emulator.AllowHTTP) {
			return u, nil
		}
		return nil, errors.New("scheme is not https")
	}
	if u.Scheme != "https" {
		return nil, errors.New("scheme is not https")
	}
	if u.Port() != "" || !isSNSHost(strings.ToLower(u.Hostname())) {
		return nil, errors.New("host is not sns.<region>.amazonaws.com[.cn]")
	}
	return u, nil
}

// checkCertURL also wants the path SNS serves its certificates at,
// /SimpleNotificationService-<hex>.pem with no query (on an emulator's
// host, any clean path ending in ".pem"), and returns the URL normalized
// (lower-case host, no default port): the key of the certificate caches,
// and what is fetched. Any other path on an SNS host is refused: it is
// not where SNS publishes signing certificates.
func (s *settings) checkCertURL(raw string) (string, error) {
	u, err := s.checkURL(raw)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", errors.New("path is not a .pem file")
	}
	if u.RawPath != "" && u.RawPath != u.Path {
		return "", errors.New("path has escapes")
	}
	host := strings.ToLower(u.Host)
	if s.hosts[host] {
		if !strings.HasSuffix(u.Path, ".pem") || path.Clean(u.Path) != u.Path {
			return "", errors.New("path is not a .pem file")
		}
	} else if !snsCertPath(u.Path) {
		return "", errors.New("path is not /SimpleNotificationService-<hex>.pem")
	}
	return (&url.URL{Scheme: u.Scheme, Host: host, Path: u.Path}).String(), nil
}

// snsCertPath reports whether p is /SimpleNotificationService-<hex>.pem,
// with 1 to 64 lower-case hex digits (SNS uses 32).
func snsCertPath(p string) bool {
	hex, ok := strings.CutPrefix(p, "/SimpleNotificationService-")
	if !ok {
		return false
	}
	hex, ok = strings.CutSuffix(hex, ".pem")
	if !ok || len(hex) == 0 || len(hex) > 64 {
		return false
	}
	return !strings.ContainsFunc(hex, func(r rune) bool { return (r < '0' || r > '9') && (r < 'a' || r > 'f') })
}

// checkSubscribeURL also wants the ConfirmSubscription action for the
// message's own topic.
func (s *settings) checkSubscribeURL(raw, topic string) error {
	u, err := s.checkURL(raw)
	if err != nil {
		return err
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return errors.New("bad query")
	}
	if q.Get("Action") != "ConfirmSubscription" || q.Get("TopicArn") != topic {
		return errors.New("not a ConfirmSubscription for this topic")
	}
	return nil
}

// isSNSHost reports whether h is sns.<region>.amazonaws.com (commercial and
// GovCloud regions) or sns.cn-<…>.amazonaws.com.cn (China).
func isSNSHost(h string) bool {
	rest, ok := strings.CutPrefix(h, "sns.")
	if !ok {
		return false
	}
	if region, ok := strings.CutSuffix(rest, ".amazonaws.com.cn"); ok {
		return isRegion(region) && strings.HasPrefix(region, "cn-")
	}
	if region, ok := strings.CutSuffix(rest, ".amazonaws.com"); ok {
		return isRegion(region) && !strings.HasPrefix(region, "cn-")
	}
	return false
}

// isRegion accepts "xx-direction-N" (us-east-1, ap-southeast-2,
// cn-northwest-1) and "us-gov-direction-N" (us-gov-west-1).
func isRegion(r string) bool {
	p := strings.Split(r, "-")
	if len(p) == 4 && p[0] == "us" && p[1] == "gov" {
		p = []string{"us", p[2], p[3]}
	}
	if len(p) != 3 || p[1] == "gov" {
		return false
	}
	return len(p[0]) == 2 && isLower(p[0]) &&
		len(p[1]) >= 4 && len(p[1]) <= 16 && isLower(p[1]) &&
		len(p[2]) >= 1 && len(p[2]) <= 2 && isDigits(p[2])
}

func isLower(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < 'a' || r > 'z' })
}

func isDigits(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

// redactURL keeps scheme, host and path: a SubscribeURL's query holds the
// confirmation token, which stays out of logs and errors.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(bad URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
