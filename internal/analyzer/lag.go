package analyzer

import (
	"context"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/mcpwatch/mcpwatch/internal/kafka"
)

// lagLoop computes every role's consumer-group lag from the brokers —
// high watermark minus committed offset, per partition — every interval,
// whether or not this instance polls anything: a stalled group (a
// rebalance waiting for a dead member's session timeout, a role that owns
// nothing) still shows its backlog. Every instance reports its groups'
// whole lag; aggregate with max by (group, topic, partition).
func (a *Analyzer) lagLoop(ctx context.Context, interval time.Duration) {
	cl, err := kafka.NewClient(a.o.Kafka)
	if err != nil {
		a.log.Warn("consumer lag not measured", "err", err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	groups := map[string]string{} // group → its role's topic
	for _, r := range a.cfg.Roles {
		switch r {
		case RoleIngest:
			groups[a.cfg.Group] = a.o.Kafka.Topic
		case RoleRespond:
			groups[a.cfg.RespondGroup] = a.o.Kafka.FindingsTopic
		case RoleDetect:
			if a.o.DetectState != nil {
				groups[a.cfg.DetectGroup] = a.o.Kafka.DetectTopic
			}
		}
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, interval)
		lags, err := adm.Lag(qctx, names...)
		cancel()
		if err != nil && ctx.Err() == nil {
			a.m.lagErrors.Inc()
		}
		for _, gl := range lags {
			topic := groups[gl.Group]
			for p, l := range gl.Lag[topic] {
				if l.End.Err != nil {
					continue
				}
				lag := l.Lag
				if l.Commit.At < 0 || l.Err != nil {
					lag = l.End.Offset // nothing committed yet: all of it
				}
				a.m.groupLag.WithLabelValues(gl.Group, topic, strconv.Itoa(int(p))).Set(float64(lag))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
