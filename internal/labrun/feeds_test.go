//go:build linux

package labrun

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/syslogfeed"
	"github.com/flapguard/flapguard/detect/webhookfeed"
	"github.com/flapguard/flapguard/pool"
)

// feedTo returns a function that delivers a tunnel state ("down", "up") to
// p through the named feed, end to end over loopback.
func feedTo(t *testing.T, feed string, p *pool.Pool) func(state string) error {
	t.Helper()
	switch feed {
	case "notify":
		return func(state string) error {
			st, err := detect.ParseState(state)
			if err != nil {
				return err
			}
			p.Notify(detect.Event{Tunnel: "vpn-aws", State: st, Source: "lab"})
			return nil
		}
	case "syslog":
		// A YAMAHA RTX forwards its log by syslog; its tunnel 1 carries our
		// traffic.
		sl, err := syslogfeed.New(syslogfeed.Config{
			Notifier: p,
			Rules:    syslogfeed.YamahaRTX().WithTunnelMap(map[string]string{"1": "vpn-aws"}).Rules,
		})
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go sl.ServeUDP(pc)
		t.Cleanup(func() { sl.Close() })
		c, err := net.Dial("udp", pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return func(state string) error {
			word := map[string]string{"down": "Down", "up": "Up"}[state]
			line := fmt.Sprintf("<190>%s rtx1210 %s: IP Tunnel[1] %s", time.Now().Format(time.Stamp), time.Now().Format("2006/01/02 15:04:05"), word)
			_, err := c.Write([]byte(line))
			return err
		}
	case "webhook":
		const token = "lab-token"
		wh, err := webhookfeed.New(webhookfeed.Config{Notifier: p, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(wh)
		t.Cleanup(srv.Close)
		return func(state string) error {
			body := fmt.Sprintf(`{"tunnel":"vpn-aws","state":%q,"source":"lab"}`, state)
			req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewBufferString(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("webhook answered %s", resp.Status)
			}
			return nil
		}
	}
	t.Fatalf("unknown feed %q", feed)
	return nil
}

var _ = strings.TrimSpace
