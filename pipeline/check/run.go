package check

import (
	"context"
	"sync"
	"time"

	"github.com/imgpipe/imgpipe/site"
)

// Source is one check over one part of the site.
type Source struct {
	Name string
	// Skip, when not empty, says why the check does not run (the site does not
	// configure that part, or the flags left it out).
	Skip string
	// Run reads the site and returns the check's items and notes. An error means the
	// check could not run at all; the report names it as unchecked.
	Run func(ctx context.Context) (items []Item, notes []string, err error)
}

// Skip is a source that does not run, with the reason.
func Skip(name, why string) Source { return Source{Name: name, Skip: why} }

// Run runs every source concurrently (they talk to different services) and builds
// the report, items in source order.
func Run(ctx context.Context, lock *site.Lock, lockName string, sources []Source, now func() time.Time) *Report {
	if now == nil {
		now = time.Now
	}
	start := now()
	rep := &Report{Schema: Schema, Lock: lockName, Talos: lock.Talos, CheckedAt: start.UTC().Truncate(time.Second),
		Checks: make([]Section, len(sources))}
	items := make([][]Item, len(sources))
	var wg sync.WaitGroup
	for i, src := range sources {
		sec := &rep.Checks[i]
		sec.Name = src.Name
		if src.Skip != "" {
			sec.Result, sec.Notes = ResultSkipped, []string{src.Skip}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			its, notes, err := src.Run(ctx)
			sec.Seconds = time.Since(t0).Seconds()
			sec.Notes = notes
			for j := range its {
				its[j].Check = src.Name
			}
			if err != nil {
				sec.Error = err.Error()
				its = append(its, Item{Check: src.Name, Kind: src.Name, Name: src.Name, Status: Unchecked,
					Detail: "the check could not run: " + err.Error()})
			}
			items[i] = its
		}()
	}
	wg.Wait()
	rep.Items = []Item{}
	for _, its := range items {
		rep.Items = append(rep.Items, its...)
	}
	rep.finish()
	rep.Seconds = time.Since(start).Seconds()
	return rep
}
