//go:build linux

package soak

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/flapguard/flapguard/pool"
)

// brokenRetryUnknown is the deliberately wrong caller (-soak.broken).
const brokenRetryUnknown = "retry-unknown"

// workload says what the workers of one target do.
type workload struct {
	workers int
	seed    uint64
	broken  string
	// mix: cumulative per-mille thresholds of read, insert, transfer; the
	// rest are long reads.
	mix [3]int
	// noDeadline: per-mille of operations run without a deadline.
	noDeadline int
	// think is the pause between a worker's operations, drawn in [lo, hi).
	thinkLo, thinkHi time.Duration
	// longLo, longHi bound a long read's sleep.
	longLo, longHi time.Duration
	// slowInserts: per-mille of inserts the server spends 100-300ms on.
	slowInserts int
	// transfers: the target has a ledger.
	transfers bool
}

// workerLog is what one worker did, in order.
type workerLog struct {
	ops []opRecord
	// badReads are reads that saw a ledger total other than the constant.
	badReads []string
}

// runWorkers runs w.workers workers against tg until stop is closed, and
// returns their logs once all have finished their last operation.
func runWorkers(tg *target, w workload, stop <-chan struct{}) []*workerLog {
	logs := make([]*workerLog, w.workers)
	var wg sync.WaitGroup
	for i := range w.workers {
		logs[i] = &workerLog{}
		wg.Go(func() {
			wk := &worker{tg: tg, w: w, id: i, log: logs[i],
				rng: rand.New(rand.NewPCG(w.seed, uint64(i)+1))}
			wk.run(stop)
		})
	}
	wg.Wait()
	return logs
}

type worker struct {
	tg  *target
	w   workload
	id  int
	rng *rand.Rand
	log *workerLog
	seq int64
}

func (wk *worker) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		wk.one()
		pause := wk.w.thinkLo + time.Duration(wk.rng.Int64N(int64(wk.w.thinkHi-wk.w.thinkLo)+1))
		select {
		case <-stop:
			return
		case <-time.After(pause):
		}
	}
}

// nextID is unique per target: the worker in the high bits, a sequence in
// the low ones.
func (wk *worker) nextID() int64 {
	wk.seq++
	return int64(wk.id+1)<<32 | wk.seq
}

// one runs one operation, chosen and parametrised by the worker's rng.
func (wk *worker) one() {
	r := wk.rng.IntN(1000)
	var deadline time.Duration
	if wk.rng.IntN(1000) >= wk.w.noDeadline {
		deadline = 2*time.Second + time.Duration(wk.rng.Int64N(int64(3*time.Second)))
	}
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if deadline > 0 {
		ctx, cancel = context.WithTimeout(ctx, deadline)
	}
	defer cancel()
	rec := opRecord{worker: wk.id, deadline: deadline}
	switch {
	case r < wk.w.mix[0]:
		rec.kind = opRead
	case r < wk.w.mix[1]:
		rec.kind = opInsert
	case r < wk.w.mix[2] && wk.w.transfers:
		rec.kind = opTransfer
	case r < wk.w.mix[2]:
		rec.kind = opInsert
	default:
		rec.kind = opLongRead
	}
	var err error
	rec.start = time.Now()
	switch rec.kind {
	case opRead:
		err = wk.read(ctx)
		rec.out = readOutcome(err)
	case opInsert:
		rec.id = wk.nextID()
		if wk.tg.d.slowInsert != nil && wk.rng.IntN(1000) < wk.w.slowInserts {
			rec.slow = 100*time.Millisecond + time.Duration(wk.rng.Int64N(int64(200*time.Millisecond)))
		}
		err = wk.insert(ctx, &rec)
		rec.out = insertOutcome(err)
	case opTransfer:
		rec.id = wk.nextID()
		rec.src = 1 + wk.rng.IntN(numAccounts)
		rec.dst = 1 + (rec.src+wk.rng.IntN(numAccounts-1))%numAccounts
		rec.amount = 1 + wk.rng.Int64N(100)
		var fnErr error
		err = wk.tg.p.RunTx(ctx, pool.RetryPolicy{}, nil, func(ctx context.Context, tx *sql.Tx) error {
			fnErr = nil
			fnErr = wk.transfer(ctx, tx, rec)
			return fnErr
		})
		rec.out = transferOutcome(err, fnErr)
	case opLongRead:
		d := wk.w.longLo + time.Duration(wk.rng.Int64N(int64(wk.w.longHi-wk.w.longLo)+1))
		_, err = wk.tg.p.DB().ExecContext(ctx, wk.tg.d.sleep(d))
		rec.out = readOutcome(err)
	}
	rec.dur = time.Since(rec.start)
	if err != nil {
		rec.err = err.Error()
	}
	wk.log.ops = append(wk.log.ops, rec)
}

// read checks the ledger's total: one statement sees one snapshot, so it
// must always be the constant (PostgreSQL and InnoDB consistent reads).
func (wk *worker) read(ctx context.Context) error {
	if !wk.w.transfers {
		var one int
		return wk.tg.p.DB().QueryRowContext(ctx, wk.tg.d.sumQuery).Scan(&one)
	}
	var sum, n int64
	if err := wk.tg.p.DB().QueryRowContext(ctx, wk.tg.d.sumQuery).Scan(&sum, &n); err != nil {
		return err
	}
	if sum != numAccounts*initialBalance || n != numAccounts {
		wk.log.badReads = append(wk.log.badReads, fmt.Sprintf("%s: worker %d read total %d over %d accounts, want %d over %d",
			time.Now().Format("15:04:05.000"), wk.id, sum, n, numAccounts*initialBalance, numAccounts))
	}
	return nil
}

// insert is a plain ExecContext, as users write it. With -soak.broken it
// also does what a naive user does with an unknown outcome: run it again.
func (wk *worker) insert(ctx context.Context, rec *opRecord) error {
	q, args := wk.tg.d.insert(rec.id, wk.id)
	if rec.slow > 0 {
		q, args = wk.tg.d.slowInsert(rec.id, wk.id, rec.slow)
	}
	_, err := wk.tg.p.DB().ExecContext(ctx, q, args...)
	if wk.w.broken == brokenRetryUnknown {
		for i := 0; i < 3 && errors.Is(err, pool.ErrOutcomeUnknown); i++ {
			rec.note += fmt.Sprintf("; BROKEN: ran again after %q", err)
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = wk.tg.p.DB().ExecContext(rctx, q, args...)
			cancel()
		}
	}
	return err
}

// transfer moves rec.amount from rec.src to rec.dst and records the
// transfer in the same transaction. Rows are locked in id order, so
// transfers cannot deadlock each other.
func (wk *worker) transfer(ctx context.Context, tx *sql.Tx, rec opRecord) error {
	ph := wk.tg.d.ph
	upd := fmt.Sprintf("UPDATE soak_accounts SET balance = balance + %s WHERE id = %s", ph(1), ph(2))
	first, second := rec.src, rec.dst
	d1, d2 := -rec.amount, rec.amount
	if first > second {
		first, second, d1, d2 = second, first, d2, d1
	}
	for _, s := range []struct {
		id int
		d  int64
	}{{first, d1}, {second, d2}} {
		res, err := tx.ExecContext(ctx, upd, s.d, s.id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("soak: account %d: %d rows updated", s.id, n)
		}
	}
	_, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO soak_transfers VALUES (%s, %s, %s, %s)", ph(1), ph(2), ph(3), ph(4)),
		rec.id, rec.src, rec.dst, rec.amount)
	return err
}
