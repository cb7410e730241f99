package snsfeed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// maxFetchBody bounds a fetched certificate or confirmation response
// (an SNS certificate is ~2 KiB, a ConfirmSubscription response ~0.5 KiB).
const maxFetchBody = 64 << 10

// FetchFunc GETs url and returns the body of a 200 response. The handler
// calls it only for URLs that passed its host rules, under a context that
// ends after Config.FetchTimeout; a body over 64 KiB is refused. Errors
// must not contain url's query (it can hold a confirmation token).
type FetchFunc func(ctx context.Context, url string) ([]byte, error)

// httpFetch is the default FetchFunc: HTTPS with the system roots, no
// redirects (a redirect could lead off the SNS host), no cookies.
func httpFetch(timeout time.Duration) FetchFunc {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.MaxIdleConns = 4
	tr.IdleConnTimeout = 90 * time.Second
	client := &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return func(ctx context.Context, raw string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
		if err != nil {
			return nil, errors.New("bad URL")
		}
		resp, err := client.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error repeats the URL, token included
			}
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			io.Copy(io.Discard, io.LimitReader(resp.Body, maxFetchBody))
			return nil, fmt.Errorf("answered %s", resp.Status)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBody+1))
		if err != nil {
			return nil, err
		}
		if len(body) > maxFetchBody {
			return nil, fmt.Errorf("response larger than %d bytes", maxFetchBody)
		}
		return body, nil
	}
}
