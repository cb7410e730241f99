package webhookfeed

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
)

// The 422 answer echoed an alert's alertname raw: control characters (a
// terminal escape, a bell, a NUL) reached whoever reads the answer. 4xx
// bodies are escaped and short.
func TestAnswersAreEscapedAndShort(t *testing.T) {
	h, err := New(Config{Notifier: &recorder{}, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	evil := `evil\u0007\u001b[31mred\u0000\u202e\r\nX-Injected: 1 ` + strings.Repeat("long ", 200)
	for _, body := range []string{
		`{"version":"4","alerts":[{"labels":{"alertname":"` + evil + `"}}]}`,
		`{"version":"4","alerts":[{"status":"` + evil + `","labels":{"tunnel":"a"}}]}`,
		`{"tunnel":"a","state":"` + evil + `"}`,
		`{"tunnel":"a\u0007","state":"down"}`,
		"{\"tunnel\":\"a\x07\",\"state\":\"down\"}",
		`{"tunnel":"a","state":"down","` + evil + `":1}`,
	} {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testToken)
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, req)
		if rw.Code/100 != 4 {
			t.Errorf("%.60q: status %d, want 4xx", body, rw.Code)
			continue
		}
		answer := strings.TrimSuffix(rw.Body.String(), "\n")
		for _, r := range answer {
			if unicode.IsControl(r) || r == '\u202e' {
				t.Errorf("%.60q: answer has %U: %q", body, r, answer)
				break
			}
		}
		if len(answer) > maxAnswer+64 {
			t.Errorf("%.60q: answer is %d bytes, want at most %d + the status line", body, len(answer), maxAnswer)
		}
	}
}
