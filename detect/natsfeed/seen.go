package natsfeed

import (
	"crypto/sha256"
	"time"
)

// maxSeen bounds the messages a Subscription remembers to drop repeats.
const maxSeen = 4096

// noLimitMemory is how long a message is remembered when MaxAge is off.
const noLimitMemory = 10 * time.Minute

// seenSet remembers the hashes of recent messages, each until the time
// after which MaxAge would drop it anyway, at most maxSeen of them (the
// oldest go first). It is used from one goroutine (the client delivers a
// subscription's messages one at a time) and has no lock.
type seenSet struct {
	max   int
	until map[[32]byte]time.Time
	order [][32]byte // insertion order; may hold keys already expired
}

func newSeenSet(max int) *seenSet {
	return &seenSet{max: max, until: make(map[[32]byte]time.Time)}
}

// add records data and reports whether it is new (not seen, or seen so
// long ago that it has expired).
func (s *seenSet) add(data []byte, now, sent time.Time, maxAge time.Duration) bool {
	k := sha256.Sum256(data)
	if u, ok := s.until[k]; ok && now.Before(u) {
		return false
	}
	until := now.Add(noLimitMemory)
	if maxAge > 0 {
		until = sent.Add(maxAge).Add(time.Second) // past it, MaxAge drops the message
	}
	for len(s.order) > 0 && (len(s.until) >= s.max || !now.Before(s.until[s.order[0]])) {
		delete(s.until, s.order[0])
		s.order = s.order[1:]
	}
	if _, ok := s.until[k]; !ok {
		s.order = append(s.order, k)
	}
	s.until[k] = until
	return true
}
