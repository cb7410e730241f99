package timeline

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestWritePNG(t *testing.T) {
	f := filepath.Join(t.TempDir(), "t.png")
	err := WritePNG(f, []Panel{
		{Title: "plain", OK: []Point{{1, 0.01}}, Failed: []Point{{3, 2}}, Hung: []Point{{4, 5}}, Shade: [][2]float64{{2, 4}}, Mark: 4, MarkLabel: "up"},
		{Title: "flapguard", OK: []Point{{1, 0.01}, {5, 0.02}}, Mark: -1},
	}, 6, 5.5)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 5000 {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	if err := WritePNG(f, nil, 1, 1); err == nil {
		t.Fatal("no panels accepted")
	}
}
