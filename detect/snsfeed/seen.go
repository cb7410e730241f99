package snsfeed

import "sync"

// seenSet remembers the last max MessageIds handled, so a redelivery (SNS
// retries with the same MessageId) is not applied twice. Only messages
// whose signature verified enter it, so only SNS can fill it; the oldest
// id is forgotten first.
type seenSet struct {
	max int

	mu   sync.Mutex     // protects following fields
	ids  map[string]int // id → its slot in ring
	ring []string
	next int // slot the next id takes
}

func newSeenSet(max int) *seenSet {
	return &seenSet{max: max, ids: make(map[string]int), ring: make([]string, 0, min(max, 1024))}
}

// claim reports whether id is new, and remembers it if so.
func (s *seenSet) claim(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.ids[id]; dup {
		return false
	}
	if len(s.ring) < s.max {
		s.ring = append(s.ring, id)
		s.ids[id] = len(s.ring) - 1
		return true
	}
	old := s.ring[s.next]
	if slot, ok := s.ids[old]; ok && slot == s.next {
		delete(s.ids, old)
	}
	s.ring[s.next] = id
	s.ids[id] = s.next
	s.next = (s.next + 1) % s.max
	return true
}

// release forgets id, after a failure SNS should retry.
func (s *seenSet) release(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ids, id)
}
