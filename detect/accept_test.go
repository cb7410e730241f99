package detect_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/flapguard/flapguard/detect"
)

type refuser struct{ got int }

func (r *refuser) Notify(detect.Event) { r.got++ }
func (r *refuser) Accept(detect.Event) error {
	r.got++
	return fmt.Errorf("%w: not mine", detect.ErrIgnored)
}

func TestAcceptVerdicts(t *testing.T) {
	ev := detect.Event{Tunnel: "t", State: detect.Down}
	plain := 0
	n := detect.NotifierFunc(func(detect.Event) { plain++ })
	if err := detect.Accept(n, ev); err != nil || plain != 1 {
		t.Fatalf("plain notifier: err=%v delivered=%d, want nil and 1", err, plain)
	}
	if err := detect.Accept(nil, ev); !errors.Is(err, detect.ErrIgnored) {
		t.Fatalf("nil notifier: %v, want ErrIgnored", err)
	}
	r1, r2 := &refuser{}, &refuser{}
	err := detect.Accept(detect.Multi(r1, nil, r2), ev)
	if !errors.Is(err, detect.ErrIgnored) || r1.got != 1 || r2.got != 1 {
		t.Fatalf("all refuse: err=%v got=%d,%d; want ErrIgnored, each asked once", err, r1.got, r2.got)
	}
	if err := detect.Accept(detect.Multi(r1, n), ev); err != nil || plain != 2 {
		t.Fatalf("one takes: err=%v delivered=%d, want nil and 2", err, plain)
	}
	if err := detect.Accept(detect.Multi(), ev); !errors.Is(err, detect.ErrIgnored) {
		t.Fatalf("empty Multi: %v, want ErrIgnored", err)
	}
}
