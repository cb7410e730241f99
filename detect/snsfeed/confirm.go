package snsfeed

import (
	"context"
	"encoding/xml"
	"net/http"
)

// confirm GETs a verified SubscriptionConfirmation's SubscribeURL, which
// SNS takes as the endpoint's consent to the subscription. The URL was
// signed by SNS, and must still be https on an SNS host for the same
// topic. It returns the new subscription's ARN when SNS's answer has one
// ("" otherwise: SNS's answer is not needed to know it worked).
func (h *Handler) confirm(ctx context.Context, e *envelope) (string, *rejection) {
	if err := h.s.checkSubscribeURL(e.SubscribeURL, e.TopicArn); err != nil {
		return "", reject(ReasonSubscribeURL, http.StatusForbidden, "SubscribeURL %s refused: %v", quote(redactURL(e.SubscribeURL)), err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.s.FetchTimeout)
	defer cancel()
	body, err := h.s.Fetch(ctx, e.SubscribeURL)
	if err != nil {
		// The token is in the URL's query: only scheme, host and path
		// are shown.
		return "", reject(ReasonConfirm, http.StatusBadGateway, "confirming at %s: %v", redactURL(e.SubscribeURL), err)
	}
	var resp struct {
		Arn string `xml:"ConfirmSubscriptionResult>SubscriptionArn"`
	}
	if xml.Unmarshal(body, &resp) != nil || !validSubscriptionARN(resp.Arn) {
		return "", nil
	}
	return resp.Arn, nil
}

// validSubscriptionARN accepts a topic ARN plus ":<id>", for logging.
func validSubscriptionARN(s string) bool {
	i := len(s) - 1
	for i >= 0 && s[i] != ':' {
		i--
	}
	return i > 0 && i < len(s)-1 && validARN(s[:i]) && !hasControl(s)
}
