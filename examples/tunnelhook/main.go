// Command tunnelhook reports tunnel state changes to a flapguard webhook
// (detect/webhookfeed) from the monitoring side of a VPN.
//
// As a strongSwan (charon "updown"/leftupdown) or Libreswan updown script it
// reads PLUTO_VERB and PLUTO_CONNECTION from the environment and POSTs one
// event: up-client/up-host (and their -v6 forms) are "up",
// down-client/down-host are "down"; prepare-*, route-* and unroute-* verbs
// are accepted and send nothing.
//
//	FLAPGUARD_WEBHOOK_URL=https://app:8443/tunnel FLAPGUARD_WEBHOOK_TOKEN=… tunnelhook
//
// With -syslog it forwards log lines from stdin (e.g. `tail -F
// /var/log/charon.log | tunnelhook -syslog -packs strongswan`) through the
// syslogfeed rule packs and POSTs every event they yield.
//
// Credentials: -token / FLAPGUARD_WEBHOOK_TOKEN (Authorization: Bearer) or
// -hmac-key / FLAPGUARD_WEBHOOK_HMAC_KEY (X-Flapguard-Signature over
// timestamp and body; with -sign-path or FLAPGUARD_WEBHOOK_SIGN_PATH=1 over
// method and path too, which webhooks with RequirePath insist on and older
// ones do not understand). Every request carries a fresh id. Prefer the
// environment: flags show up in ps.
//
// Exit status: 0 delivered (or nothing to send), 1 delivery failed, 2 bad
// flags or environment.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/syslogfeed"
	"github.com/flapguard/flapguard/detect/webhookfeed"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdin, os.Stderr))
}

const (
	exitOK       = 0
	exitDelivery = 1
	exitUsage    = 2
)

// config is what flags and environment resolve to.
type config struct {
	url      string
	token    string
	hmacKey  []byte
	signPath bool
	source   string
	tunnel   string
	timeout  time.Duration
	attempts int
	syslog   bool
	packs    string
	tmap     map[string]string
}

func run(args []string, getenv func(string) string, stdin io.Reader, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "tunnelhook:", err)
		}
		return exitUsage
	}
	h := &hook{cfg: cfg, client: &http.Client{Timeout: cfg.timeout}, stderr: stderr}
	if cfg.syslog {
		return h.forwardSyslog(stdin)
	}
	ev, send, err := updownEvent(getenv, cfg.tunnel)
	if err != nil {
		fmt.Fprintln(stderr, "tunnelhook:", err)
		return exitUsage
	}
	if !send {
		return exitOK
	}
	if err := h.post(ev); err != nil {
		fmt.Fprintln(stderr, "tunnelhook:", err)
		return exitDelivery
	}
	return exitOK
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("tunnelhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var hmacKey, tmap string
	fs.StringVar(&cfg.url, "url", getenv("FLAPGUARD_WEBHOOK_URL"), "webhook URL (env FLAPGUARD_WEBHOOK_URL)")
	fs.StringVar(&cfg.token, "token", getenv("FLAPGUARD_WEBHOOK_TOKEN"), "bearer token (env FLAPGUARD_WEBHOOK_TOKEN)")
	fs.StringVar(&hmacKey, "hmac-key", getenv("FLAPGUARD_WEBHOOK_HMAC_KEY"), "HMAC-SHA256 signing key (env FLAPGUARD_WEBHOOK_HMAC_KEY)")
	signPath, _ := strconv.ParseBool(getenv("FLAPGUARD_WEBHOOK_SIGN_PATH"))
	fs.BoolVar(&cfg.signPath, "sign-path", signPath, "bind the signature to method and path (env FLAPGUARD_WEBHOOK_SIGN_PATH=1)")
	fs.StringVar(&cfg.source, "source", "tunnelhook", "source name sent with each event")
	fs.StringVar(&cfg.tunnel, "tunnel", "", "tunnel id to report (default: $PLUTO_CONNECTION)")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "timeout of one POST")
	fs.IntVar(&cfg.attempts, "attempts", 3, "POST attempts on network errors and 5xx")
	fs.BoolVar(&cfg.syslog, "syslog", false, "forward log lines from stdin through the rule packs")
	fs.StringVar(&cfg.packs, "packs", "strongswan,libreswan", "with -syslog: comma-separated rule packs ("+packNames()+")")
	fs.StringVar(&tmap, "map", "", "with -syslog: device tunnel id to tunnel id, e.g. 1=aws-1,3=aws-2 (unmapped tunnels are ignored)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	u, err := url.Parse(cfg.url)
	switch {
	case cfg.url == "":
		return cfg, errors.New("no webhook URL: set -url or FLAPGUARD_WEBHOOK_URL")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return cfg, fmt.Errorf("bad webhook URL %q: want http(s)://host/path", cfg.url)
	}
	if cfg.token == "" && hmacKey == "" {
		return cfg, errors.New("no credentials: set FLAPGUARD_WEBHOOK_TOKEN or FLAPGUARD_WEBHOOK_HMAC_KEY (or -token / -hmac-key)")
	}
	cfg.hmacKey = []byte(hmacKey)
	if cfg.timeout <= 0 || cfg.attempts < 1 {
		return cfg, errors.New("-timeout must be > 0 and -attempts >= 1")
	}
	if tmap != "" {
		cfg.tmap = map[string]string{}
		for kv := range strings.SplitSeq(tmap, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k == "" || v == "" {
				return cfg, fmt.Errorf("bad -map entry %q: want device=tunnel", kv)
			}
			cfg.tmap[k] = v
		}
	}
	return cfg, nil
}

func packNames() string {
	var names []string
	for _, p := range syslogfeed.Packs() {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

// updownEvent maps PLUTO_VERB/PLUTO_CONNECTION to an event; send is false
// for verbs that are not state changes.
func updownEvent(getenv func(string) string, tunnel string) (ev detect.Event, send bool, err error) {
	verb := getenv("PLUTO_VERB")
	if verb == "" {
		return ev, false, errors.New("PLUTO_VERB is not set: run me as an updown script, or use -syslog")
	}
	base := strings.TrimSuffix(verb, "-v6")
	switch base {
	case "up-client", "up-host":
		ev.State = detect.Up
	case "down-client", "down-host":
		ev.State = detect.Down
	case "prepare-client", "prepare-host", "route-client", "route-host", "unroute-client", "unroute-host":
		return ev, false, nil
	default:
		return ev, false, fmt.Errorf("unknown PLUTO_VERB %q", verb)
	}
	if tunnel == "" {
		tunnel = getenv("PLUTO_CONNECTION")
	}
	if tunnel == "" {
		return ev, false, errors.New("PLUTO_CONNECTION is not set and no -tunnel given")
	}
	ev.Tunnel = tunnel
	if err := ev.Validate(); err != nil {
		return ev, false, err
	}
	return ev, true, nil
}

type hook struct {
	cfg    config
	client *http.Client
	stderr io.Writer
}

// forwardSyslog posts an event for every line a rule pack recognises. A
// delivery failure is reported and forwarding goes on; the exit status
// says whether any failed.
func (h *hook) forwardSyslog(stdin io.Reader) int {
	var rules []syslogfeed.Rule
	for name := range strings.SplitSeq(h.cfg.packs, ",") {
		p, err := syslogfeed.PackByName(strings.TrimSpace(name))
		if err != nil {
			fmt.Fprintln(h.stderr, "tunnelhook:", err)
			return exitUsage
		}
		if h.cfg.tmap != nil {
			p = p.WithTunnelMap(h.cfg.tmap)
		}
		rules = append(rules, p.Rules...)
	}
	parser, err := syslogfeed.NewParser(rules, 0)
	if err != nil {
		fmt.Fprintln(h.stderr, "tunnelhook:", err)
		return exitUsage
	}
	r := bufio.NewReaderSize(stdin, 64<<10)
	failed := 0
	for {
		line, err := readLine(r, syslogfeed.DefaultMaxLine)
		if len(line) > 0 {
			ev, ok, perr := parser.ParseLine(line)
			switch {
			case errors.Is(perr, syslogfeed.ErrMalformed):
				fmt.Fprintln(h.stderr, "tunnelhook: skipping line:", perr)
			case ok:
				if err := h.post(ev); err != nil {
					failed++
					fmt.Fprintln(h.stderr, "tunnelhook:", err)
				}
			}
		}
		if errors.Is(err, syslogfeed.ErrLineTooLong) {
			fmt.Fprintln(h.stderr, "tunnelhook: skipping a line longer than", syslogfeed.DefaultMaxLine, "bytes")
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintln(h.stderr, "tunnelhook: reading stdin:", err)
			return exitDelivery
		}
	}
	if failed > 0 {
		return exitDelivery
	}
	return exitOK
}

// readLine returns the next line, or ErrLineTooLong after discarding a
// line longer than max, so one huge line cannot grow memory.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > max+1 {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			return nil, syslogfeed.ErrLineTooLong
		}
		line = append(line, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// post sends ev, retrying network errors, 429 and 5xx; every attempt is
// signed afresh (new id and timestamp), so a retry is never a replay.
func (h *hook) post(ev detect.Event) error {
	var last error
	for attempt := range h.cfg.attempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 250 * time.Millisecond)
		}
		retry, err := h.postOnce(ev)
		if err == nil {
			return nil
		}
		last = err
		if !retry {
			break
		}
	}
	return fmt.Errorf("posting %s: %w", ev, last)
}

func (h *hook) postOnce(ev detect.Event) (retry bool, err error) {
	id := make([]byte, 12)
	rand.Read(id)
	tunnel := ev.Tunnel
	body, err := json.Marshal(webhookfeed.Event{
		Tunnel: tunnel, State: ev.State.String(), Source: h.cfg.source, ID: hex.EncodeToString(id),
		At: ptrTime(time.Now().UTC()),
	})
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.cfg.token)
	} else if h.cfg.signPath {
		webhookfeed.SignRequestPath(req, body, h.cfg.hmacKey, time.Now())
	} else {
		webhookfeed.SignRequest(req, body, h.cfg.hmacKey, time.Now())
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("webhook answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, err
}

func ptrTime(t time.Time) *time.Time { return &t }
