package analyzer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/internal/calljoin"
)

type metrics struct {
	lag          *prometheus.GaugeVec
	batchRows    prometheus.Histogram
	insertDur    *prometheus.HistogramVec
	rows         *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	insertErrors *prometheus.CounterVec
	chUp         prometheus.Gauge
	hookErrors   *prometheus.CounterVec
	commitErrors prometheus.Counter
	retention    *prometheus.CounterVec
	fetchErrors  prometheus.Counter
	prepared     prometheus.Counter
	findingsOut  prometheus.Counter
	findingsIn   prometheus.Counter
	suppressed   prometheus.Counter
	undecodable  *prometheus.CounterVec
	assigned     *prometheus.GaugeVec
	detectInputs prometheus.Counter
	inputsOut    prometheus.Counter
	inputsGated  prometheus.Counter
	detectAborts prometheus.Counter
	groupLag     *prometheus.GaugeVec
	lagErrors    prometheus.Counter
	batchBytes   prometheus.Histogram
	peakEvents   prometheus.Gauge
	peakBytes    prometheus.Gauge
	probes       *prometheus.CounterVec
	lastWrite    prometheus.Gauge
	permanent    *prometheus.CounterVec
	// The call join (join.go).
	joinHeld       prometheus.Gauge
	joinRemembered prometheus.Gauge
	joinTotal      *prometheus.CounterVec
	joinDiverted   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "mcpwatch_analyzer_"
	m := &metrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "consumer_lag",
			Help: "Records between the last polled offset and the high watermark, per partition."}, []string{"topic", "partition"}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{Name: ns + "batch_rows",
			Help: "Events per flushed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		insertDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ns + "insert_duration_seconds",
			Help: "Latency of successful ClickHouse inserts.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"table"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "rows_inserted_total",
			Help: "Rows inserted into ClickHouse (replays included)."}, []string{"table"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "dead_lettered_total",
			Help: "Records sent to the dead-letter topic."}, []string{"reason"}),
		insertErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "insert_errors_total",
			Help: "Failed insert attempts (each is retried)."}, []string{"table"}),
		chUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "clickhouse_up",
			Help: "1 when the last ClickHouse write succeeded."}),
		hookErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "hook_errors_total",
			Help: "Detector and finding-sink errors."}, []string{"hook"}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "commit_errors_total",
			Help: "Failed offset commits (the batch is replayed; replays are idempotent)."}),
		retention: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "retention_dropped_partitions_total",
			Help: "Partitions dropped by retention."}, []string{"table"}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "fetch_errors_total",
			Help: "Errors returned by Kafka fetches."}),
		prepared: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "prepared_inserts_total",
			Help: "Events inserts built while the previous batch was being written."}),
		findingsOut: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "findings_produced_total",
			Help: "Findings produced to the findings topic (replays included)."}),
		findingsIn: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "findings_consumed_total",
			Help: "Findings the respond role consumed and stored (replays included)."}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "findings_suppressed_total",
			Help: "Match-rule findings counted on their window's finding instead of stored (docs/detections.md, Suppression; replays included)."}),
		undecodable: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "undecodable_records_total",
			Help: "Records of the keyed topics that did not decode (skipped and committed), by role."}, []string{"role"}),
		assigned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "assigned_partitions",
			Help: "Partitions this instance owns, by role."}, []string{"role"}),
		detectInputs: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "detect_inputs_applied_total",
			Help: "Detection inputs the detect role applied in committed transactions."}),
		inputsOut: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "detect_inputs_produced_total",
			Help: "Detection inputs the ingest role produced to the detect topic (replays included)."}),
		inputsGated: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "detect_inputs_gated_total",
			Help: "Later steps of repartitioned sequences the ingest role did not forward: no known first step's window holds them."}),
		detectAborts: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "detect_transactions_aborted_total",
			Help: "Detect role transactions aborted (rebalance or produce failure); the batch is applied again."}),
	}
	m.groupLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "group_lag",
		Help: "Records between a consumer group's committed offset and the high watermark, per partition, from the brokers every lag_interval (whole group, from every instance)."},
		[]string{"group", "topic", "partition"})
	m.lagErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "group_lag_errors_total",
		Help: "Failed consumer lag queries."})
	m.batchBytes = prometheus.NewHistogram(prometheus.HistogramOpts{Name: ns + "batch_bytes",
		Help: "Encoded record bytes per flushed batch.", Buckets: prometheus.ExponentialBuckets(1024, 4, 10)})
	m.peakEvents = prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "batch_events_peak",
		Help: "Events in the largest batch flushed since start (bounded by batch_rows)."})
	m.peakBytes = prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "batch_bytes_peak",
		Help: "Encoded record bytes of the largest batch flushed since start (bounded by batch_bytes)."})
	m.probes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "storage_probes_total",
		Help: "ClickHouse pings while a failed write waits for its retry, by result; an ok ends the wait."}, []string{"result"})
	m.lastWrite = prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "last_write_timestamp_seconds",
		Help: "Unix time of the last successful ClickHouse write."})
	m.permanent = prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "permanent_write_errors_total",
		Help: "Writes that failed deterministically (schema mismatch, bad data) and were not retried, by table."}, []string{"table"})
	m.joinHeld = prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "call_join_held",
		Help: "Observations the call join holds for their peer (this instance)."})
	m.joinRemembered = prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "call_join_remembered",
		Help: "Calls whose identity the call join remembers for a late peer (this instance)."})
	m.joinTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "call_join_total",
		Help: "Observations the call join released to the events topic, by result: paired (with the peer it held), adopted (from a remembered peer), unpaired (no peer within call_join_wait), evicted (call_join_max_held reached); replays included."}, []string{"result"})
	m.joinDiverted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "call_join_diverted_total",
		Help: "Records the ingest role produced to the calls topic, by kind: half (held by the join, stored on release), notice (a client observation stored at once; the join remembers its agent)."}, []string{"kind"})
	for _, r := range calljoin.Results {
		m.joinTotal.WithLabelValues(r)
	}
	reg.MustRegister(m.joinHeld, m.joinRemembered, m.joinTotal, m.joinDiverted)
	reg.MustRegister(m.batchBytes, m.peakEvents, m.peakBytes, m.probes, m.lastWrite, m.permanent)
	reg.MustRegister(m.groupLag, m.lagErrors)
	reg.MustRegister(m.detectInputs, m.inputsOut, m.inputsGated, m.detectAborts)
	reg.MustRegister(m.findingsOut, m.findingsIn, m.suppressed, m.undecodable, m.assigned)
	reg.MustRegister(m.lag, m.batchRows, m.insertDur, m.rows, m.deadLettered, m.insertErrors, m.chUp,
		m.hookErrors, m.commitErrors, m.retention, m.fetchErrors, m.prepared)
	return m
}
