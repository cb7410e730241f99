package pool

import (
	"context"
	"testing"
)

// Stats adds up: the pool's own driver conns (a probe's, the reaper's)
// are OwnSessions while open, and conns database/sql still holds whose
// session the pool knows is gone are Gone.
func TestStatsSessionsAddUp(t *testing.T) {
	p, _ := openFake(t, quietConfig(), true)
	ctx := context.Background()
	c1, err := p.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := p.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.OpenConnections != 2 || st.Gone != 0 || st.OwnSessions != 0 {
		t.Fatalf("open=%d gone=%d own=%d; want 2, 0, 0", st.OpenConnections, st.Gone, st.OwnSessions)
	}
	rc, err := p.conn.dial(ctx) // as the prober and the reaper do
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.OwnSessions != 1 {
		t.Fatalf("own=%d with a probe's conn open; want 1", st.OwnSessions)
	}
	rc.close()
	if st := p.Stats(); st.OwnSessions != 0 {
		t.Fatalf("own=%d after the probe's conn closed; want 0", st.OwnSessions)
	}
	// A lost conn database/sql has not discarded yet is gone.
	c1.Raw(func(dc any) error {
		dc.(*conn).l().bad.Store(true)
		return nil
	})
	if st := p.Stats(); st.OpenConnections != 2 || st.Gone != 1 {
		t.Fatalf("open=%d gone=%d with one conn lost; want 2, 1", st.OpenConnections, st.Gone)
	}
	c1.Close() // IsValid: discarded
	c2.Close()
	if st := p.Stats(); st.OpenConnections != 1 || st.Gone != 0 || st.OwnSessions != 0 {
		t.Fatalf("open=%d gone=%d own=%d after the lost conn was discarded; want 1, 0, 0", st.OpenConnections, st.Gone, st.OwnSessions)
	}
}
