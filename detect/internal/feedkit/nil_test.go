package feedkit

import "testing"

type notifier struct{}

func (*notifier) Notify() {}

func TestIsNil(t *testing.T) {
	var p *notifier
	var f func()
	var iface interface{ Notify() } = p
	for _, v := range []any{nil, p, f, iface, map[string]int(nil), []int(nil), (chan int)(nil)} {
		if !IsNil(v) {
			t.Errorf("IsNil(%T %v) = false", v, v)
		}
	}
	for _, v := range []any{&notifier{}, func() {}, 0, "", struct{}{}, map[string]int{}} {
		if IsNil(v) {
			t.Errorf("IsNil(%T %v) = true", v, v)
		}
	}
}
