package snsfeed

import (
	"fmt"
	"testing"
)

func TestSeenSetForgetsOldestFirst(t *testing.T) {
	s := newSeenSet(3)
	for _, id := range []string{"a", "b", "c"} {
		if !s.claim(id) {
			t.Fatalf("claim(%s) of a new id = false", id)
		}
	}
	if s.claim("a") || s.claim("c") {
		t.Fatal("a remembered id was claimed again")
	}
	if !s.claim("d") { // evicts a
		t.Fatal("claim(d) = false")
	}
	if !s.claim("a") { // a was forgotten; evicts b
		t.Fatal("the oldest id was not forgotten")
	}
	if s.claim("c") || s.claim("d") {
		t.Fatal("a newer id was forgotten")
	}
	if len(s.ids) != 3 {
		t.Fatalf("%d ids remembered, want 3", len(s.ids))
	}
}

func TestSeenSetRelease(t *testing.T) {
	s := newSeenSet(2)
	s.claim("x")
	s.release("x")
	if !s.claim("x") {
		t.Fatal("a released id could not be claimed again")
	}
	// x now holds two ring slots; evicting the stale one must not forget
	// the live claim.
	s.claim("y")
	if s.claim("x") {
		t.Fatal("the live claim of x was forgotten with its stale slot")
	}
}

func TestSeenSetStaysBounded(t *testing.T) {
	s := newSeenSet(100)
	for i := range 10000 {
		s.claim(fmt.Sprint(i))
	}
	if len(s.ids) != 100 || len(s.ring) != 100 {
		t.Fatalf("%d ids, ring %d; want 100", len(s.ids), len(s.ring))
	}
}
