package poller

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// HostFailure is one host that could not be polled.
type HostFailure struct {
	Host string
	Err  error
}

// Report is the outcome of Once.
type Report struct {
	Hosts   int           // hosts polled (attempted)
	Failed  []HostFailure // sorted by host
	Deliver error         // the outbox could not be drained completely
}

// Once runs one discovery, one poll of every host and one delivery, for
// external schedulers. The error is a setup failure (no host set at all);
// per-host failures are in the report.
func (p *Poller) Once(ctx context.Context) (Report, error) {
	hosts, err := p.Discover(ctx)
	if err != nil && len(hosts) == 0 {
		return Report{}, err
	}
	rep := Report{Hosts: len(hosts)}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		done int
	)
	for _, h := range hosts {
		wg.Add(1)
		go func(h inventory.Host) {
			defer wg.Done()
			perr := p.PollHost(ctx, h)
			mu.Lock()
			defer mu.Unlock()
			done++
			if perr != nil {
				rep.Failed = append(rep.Failed, HostFailure{Host: h.Name, Err: perr})
			}
			if p.opts.Progress != nil {
				p.opts.Progress(done, len(hosts), len(rep.Failed))
			}
		}(h)
	}
	wg.Wait()
	sort.Slice(rep.Failed, func(i, j int) bool { return rep.Failed[i].Host < rep.Failed[j].Host })

	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliverBudget)
	defer cancel()
	rep.Deliver = p.Deliver(dctx)
	p.prune(ctx)
	if ctx.Err() != nil {
		return rep, fmt.Errorf("once: %w", ctx.Err())
	}
	return rep, nil
}

// deliverBudget bounds the final outbox flush of Once and of a stopping Run.
const deliverBudget = 30 * time.Second
