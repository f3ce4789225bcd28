package sim

import (
	"context"
	"sync"
)

// parallel calls work(ctx, i) for every i in [0, n) on min(workers, n)
// goroutines. Each goroutine gets its own work function from newWork, so
// it can keep scratch state between calls; calls must write their results
// to their own slot i, so that results do not depend on scheduling. After
// each successful call progress (if not nil) is called with the number of
// calls done, from one goroutine at a time. The first error cancels the
// remaining calls and is returned; so is ctx's error when it ends first.
func parallel(ctx context.Context, n, workers int, newWork func() func(context.Context, int) error, progress func(done int)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	var (
		mu       sync.Mutex
		done     int
		firstErr error
		wg       sync.WaitGroup
	)
	for range min(max(workers, 1), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work := newWork()
			for i := range jobs {
				err := work(ctx, i)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				done++
				if progress != nil && err == nil {
					progress(done)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
