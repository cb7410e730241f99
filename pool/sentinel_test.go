package pool

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// A sentinel whose peer answers its keepalive probes condemns nothing; one
// that heard from its peer less than a second ago, or that is not older
// than the check, cannot tell. (The dead case needs packets dropped: the
// lab's V6, TestVerifyThenAct.)
func TestSentinelThatAnswersCondemnsNothing(t *testing.T) {
	p, _ := openFake(t, quietConfig(), true)
	ctx := context.Background()
	rc, err := p.conn.dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.sentinel = rc
	p.mu.Unlock()
	if dead, known := p.probeSentinel(ctx, time.Now()); dead || known {
		t.Fatalf("a sentinel that heard its peer just now: dead %v known %v; want unknown", dead, known)
	}
	if dead, known := p.probeSentinel(ctx, rc.connectedAt); dead || known {
		t.Fatalf("a sentinel not older than the check: dead %v known %v; want unknown", dead, known)
	}
	time.Sleep(1100 * time.Millisecond) // silent for a second: the kernel's smallest TCP_KEEPIDLE
	dead, known := p.probeSentinel(ctx, time.Now())
	if dead {
		t.Fatal("a sentinel whose peer answers was found dead")
	}
	if runtime.GOOS == "linux" && !known {
		t.Fatal("a silent sentinel's keepalive probe was not answered on loopback; want alive and known")
	}
}
