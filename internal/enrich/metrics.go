package enrich

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	filled struct {
		server, version, session, agent prometheus.Counter
	}
	ambiguous    prometheus.Counter
	loads        prometheus.Counter
	agentsLoaded prometheus.Counter
	loadErrors   prometheus.Counter
	rows         *prometheus.CounterVec
	flushErrors  prometheus.Counter
	evictions    prometheus.Counter
	agents       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		ambiguous:    prometheus.NewCounter(prometheus.CounterOpts{Name: "mcpwatch_enrich_ambiguous_total", Help: "Events whose server stayed empty because their connection (or agent) talked to several servers."}),
		loads:        prometheus.NewCounter(prometheus.CounterOpts{Name: "mcpwatch_enrich_loads_total", Help: "State load queries (one per table for each batch with agents not in memory)."}),
		agentsLoaded: prometheus.NewCounter(prometheus.CounterOpts{Name: "mcpwatch_enrich_agents_loaded_total", Help: "Agents whose state was looked up in ClickHouse."}),
		loadErrors:   prometheus.NewCounter(prometheus.CounterOpts{Name: "mcpwatch_enrich_load_errors_total", Help: "Failed state loads (the batch was not enriched; the caller retries)."}),
		rows:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_enrich_rows_written_total", Help: "State rows written by Flush, by table."}, []string{"table"}),
		flushErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "mcpwatch_enrich_flush_errors_total", Help: "Failed state flushes (the changes are kept for the next one)."}),
		evictions:    prometheus.NewCounter(prometheus.CounterOpts{Name: "mcpwatch_enrich_evictions_total", Help: "Agents dropped from memory beyond max_agents."}),
		agents:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcpwatch_enrich_agents", Help: "Agents whose state is in memory."}),
	}
	filled := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_enrich_filled_total", Help: "Event fields filled by enrichment, by kind (server, server_version, session, agent)."}, []string{"kind"})
	m.filled.server = filled.WithLabelValues("server")
	m.filled.version = filled.WithLabelValues("server_version")
	m.filled.session = filled.WithLabelValues("session")
	m.filled.agent = filled.WithLabelValues("agent")
	if reg != nil {
		for _, c := range []prometheus.Collector{filled, m.ambiguous, m.loads, m.agentsLoaded, m.loadErrors, m.rows, m.flushErrors, m.evictions, m.agents} {
			_ = reg.Register(c)
		}
	}
	return m
}
