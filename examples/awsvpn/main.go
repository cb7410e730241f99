// Command awsvpn wires an AWS Site-to-Site VPN into a flapguard pool the
// AWS-native way: one CloudWatch alarm per tunnel on AWS/VPN TunnelState
// publishes to an SNS topic, SNS delivers to this program's HTTPS endpoint
// (detect/snsfeed), and the pool hears "aws-1 down", "aws-1 up". The pool
// obeys both tunnels of the connection; it gates new work only while both
// are down (README.md has the CloudFormation and the CLI for the AWS side).
//
//	AWSVPN_DSN='sqlserver://app:secret@10.20.0.5:1433?database=app' go run ./examples/awsvpn \
//	    -listen :8443 -cert /etc/flapguard/tls.crt -key /etc/flapguard/tls.key \
//	    -topic arn:aws:sns:eu-west-1:123456789012:flapguard-vpn-tunnel-state \
//	    -tunnel vpn-0abc1234def567890/203.0.113.10=aws-1 \
//	    -tunnel vpn-0abc1234def567890/203.0.113.20=aws-2
//
// SNS delivers only to HTTPS endpoints with a certificate from a public CA.
// Behind a load balancer that terminates TLS, pass -tls-offloaded instead of
// -cert and -key (and read the README about several instances).
//
// Exit codes: 0 stopped by SIGINT or SIGTERM, 1 the server failed, 2 bad
// command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/flapguard/flapguard/detect/snsfeed"
	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mssqladapter"
)

// The two tunnels of one Site-to-Site VPN connection, as the pool knows
// them. The -tunnel flags map the alarms to these ids.
var tunnelIDs = []string{"aws-1", "aws-2"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "awsvpn:", err)
		os.Exit(1)
	}
}

// errUsage marks a bad command line (exit code 2); the message was printed.
var errUsage = errors.New("usage")

type options struct {
	dsn          string
	listen, path string
	cert, key    string
	tlsOffloaded bool
	topics       []string
	tunnels      map[string]string // "<VpnId>/<TunnelIpAddress>" or alarm name → aws-1 | aws-2
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	o := options{tunnels: map[string]string{}}
	fs := flag.NewFlagSet("awsvpn", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dsn, "dsn", getenv("AWSVPN_DSN"), "go-mssqldb DSN of the on-premises database (default $AWSVPN_DSN)")
	fs.StringVar(&o.listen, "listen", ":8443", "address of the SNS endpoint")
	fs.StringVar(&o.path, "path", "/sns", "URL path of the SNS endpoint (the subscription's endpoint URL ends with it)")
	fs.StringVar(&o.cert, "cert", "", "TLS certificate chain (PEM) from a public CA")
	fs.StringVar(&o.key, "key", "", "TLS private key (PEM)")
	fs.BoolVar(&o.tlsOffloaded, "tls-offloaded", false, "serve plain HTTP: a load balancer in front terminates TLS")
	fs.Func("topic", "SNS topic ARN to accept (repeatable)", func(s string) error {
		o.topics = append(o.topics, s)
		return nil
	})
	fs.Func("tunnel", "map an alarm to a tunnel: <VpnId>/<TunnelIpAddress>=aws-1, or <alarm name>=aws-2 (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" || !slices.Contains(tunnelIDs, v) {
			return fmt.Errorf("want <VpnId>/<TunnelIpAddress>=<tunnel> or <alarm name>=<tunnel>, tunnel one of %s", strings.Join(tunnelIDs, ", "))
		}
		o.tunnels[k] = v
		return nil
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errUsage
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if o.dsn == "" {
		problems = append(problems, "no DSN: pass -dsn or set $AWSVPN_DSN")
	}
	if len(o.topics) == 0 {
		problems = append(problems, "no -topic: give the ARN of the topic the alarms publish to")
	}
	if len(o.tunnels) == 0 {
		problems = append(problems, "no -tunnel: map each tunnel's alarm to "+strings.Join(tunnelIDs, " or "))
	}
	if (o.cert == "") != (o.key == "") || (o.cert == "") == !o.tlsOffloaded {
		problems = append(problems, "give -cert and -key, or -tls-offloaded (not both)")
	}
	if !strings.HasPrefix(o.path, "/") {
		problems = append(problems, "-path must start with /")
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, "awsvpn:", p)
	}
	if len(problems) > 0 {
		return o, errUsage
	}
	return o, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	// The pool obeys events for both tunnels of the connection: a DOWN on
	// one of them severs the connections that may have used it, and new
	// work waits only while both are down.
	p, err := pool.Open("sqlserver", o.dsn, pool.Config{
		Tunnels: tunnelIDs,
		Logger:  logger,
		OnEvent: func(ev pool.Event) {
			if ev.Kind == pool.EventTunnel || ev.Kind == pool.EventHealthChange {
				logger.Info("awsvpn: pool", "event", ev.String())
			}
		},
	})
	if err != nil {
		return err // never carries the DSN's password
	}
	defer p.Close()
	// Open does not connect. A failed first ping is not fatal: the tunnel
	// may be down right now, and the pool recovers by itself.
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := p.DB().PingContext(pingCtx); err != nil {
		logger.Warn("awsvpn: database not reachable yet", "err", err)
	}
	cancel()

	h, err := snsfeed.New(snsfeed.Config{
		Notifier: p,
		Topics:   o.topics,
		Tunnels:  o.tunnels,
		// The topic is created with SignatureVersion 2 (alarms.yaml), so
		// SHA1 signatures are refused.
		MinSignatureVersion: 2,
		Logger:              logger,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(o.path, h)
	srv := h.Server(o.listen) // timeouts sized for an SNS endpoint
	srv.Handler = mux
	srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)

	errc := make(chan error, 1)
	go func() {
		if o.tlsOffloaded {
			errc <- srv.ListenAndServe()
		} else {
			errc <- srv.ListenAndServeTLS(o.cert, o.key)
		}
	}()
	logger.Info("awsvpn: SNS endpoint up", "listen", o.listen, "path", o.path, "topics", o.topics)

	// The service's own work goes here: it uses p.DB() like any *sql.DB.

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return err
	}
	st := h.Stats()
	logger.Info("awsvpn: stopped", "received", st.Received, "events", st.Events, "rejected", st.RejectedTotal(), "confirmations", st.Confirmations)
	return nil
}
