package store

import (
	"context"
	"errors"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// EventRange selects stored events to replay (internal/backtest).
type EventRange struct {
	// Tenant; "" = every tenant.
	Tenant string
	// From and To bound ts to [From, To), at whole seconds (From is rounded
	// down, To up). Both required.
	From, To time.Time
	// Window is the span of ts one query reads and sorts in ClickHouse, so
	// the server never sorts the whole range at once; windows are aligned
	// to multiples of it (the default, 24h, is the events table's daily
	// partition: each query reads one partition, which it must read whole
	// anyway since ts is not a prefix of the sorting key).
	Window time.Duration
	// Batch is how many events fn gets per call. Default 4096.
	Batch int
}

// StreamEvents hands the stored events of r to fn in time order (ts_ns,
// then event_id), each once even before replays have merged, in
// batches of r.Batch, exactly as the ingest role stored them (its enricher
// had run: what the rules saw live). The slice is reused after fn returns;
// an error from fn stops the stream and is returned as is.
func (s *Store) StreamEvents(ctx context.Context, r EventRange, fn func([]event.Event) error) error {
	if r.From.IsZero() || r.To.IsZero() || !r.From.Before(r.To) {
		return errors.New("cannot stream events: want a time range with from before to")
	}
	if r.Window <= 0 {
		r.Window = 24 * time.Hour
	}
	if r.Batch <= 0 {
		r.Batch = 4096
	}
	from := r.From.UTC().Truncate(time.Second)
	to := r.To.UTC()
	if t := to.Truncate(time.Second); !t.Equal(to) {
		to = t.Add(time.Second)
	}
	buf := make([]event.Event, 0, r.Batch)
	for lo := from; lo.Before(to); {
		hi := lo.Truncate(r.Window).Add(r.Window)
		if hi.After(to) {
			hi = to
		}
		var w where
		if r.Tenant != "" {
			w.add("tenant = ?", r.Tenant)
		}
		w.add("ts >= ?", dt(lo))
		w.add("ts < ?", dt(hi))
		// Not FINAL (which merges each partition on one thread): the
		// copies a replay stored sort next to each other (same time, id,
		// tenant and agent: the sorting key ReplacingMergeTree merges on)
		// and all but the first are skipped here.
		var last dupKey
		err := s.scanEvents(ctx, false, "WHERE "+w.String()+" ORDER BY ts_ns, event_id, tenant, agent_id", w.args, func(e *event.Event) error {
			k := dupKey{e.Time.UnixNano(), e.EventID, e.Tenant, e.AgentID}
			if k == last {
				return nil
			}
			last = k
			buf = append(buf, *e)
			if len(buf) < r.Batch {
				return nil
			}
			err := fn(buf)
			buf = buf[:0]
			return err
		})
		if err != nil {
			return err
		}
		lo = hi
	}
	if len(buf) > 0 {
		return fn(buf)
	}
	return nil
}

type dupKey struct {
	ns                  int64
	id, tenant, agentID string
}
