package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// ClientOpts returns the franz-go options for cfg shared by producers and
// consumers: seed brokers, client id, dial timeout, TLS and SASL.
// cfg should already have its defaults applied (WithDefaults).
func ClientOpts(cfg Config) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
	}
	dialer := &net.Dialer{Timeout: cfg.DialTimeout}
	if cfg.TLS.Enabled {
		tc, err := cfg.TLS.tlsConfig()
		if err != nil {
			return nil, err
		}
		td := &tls.Dialer{NetDialer: dialer, Config: tc}
		opts = append(opts, kgo.Dialer(td.DialContext))
	} else {
		opts = append(opts, kgo.Dialer(dialer.DialContext))
	}
	if cfg.SASL.Mechanism != "" {
		pass, err := cfg.SASL.password()
		if err != nil {
			return nil, err
		}
		switch cfg.SASL.Mechanism {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: cfg.SASL.Username, Pass: pass}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: cfg.SASL.Username, Pass: pass}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: cfg.SASL.Username, Pass: pass}.AsSha512Mechanism()))
		default:
			return nil, fmt.Errorf("cannot configure kafka sasl: unknown mechanism %q", cfg.SASL.Mechanism)
		}
	}
	return opts, nil
}

// NewClient builds a franz-go client for cfg (defaults applied here) plus any
// extra options (e.g. ProducerOpts or consumer options).
func NewClient(cfg Config, opts ...kgo.Opt) (*kgo.Client, error) {
	cfg = cfg.WithDefaults()
	base, err := ClientOpts(cfg)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot create kafka client: %w", err)
	}
	return cl, nil
}

// password returns the SASL password from Password, PasswordFile, or the
// environment variable MCPWATCH_KAFKA_SASL_PASSWORD, in that order.
func (s SASLConfig) password() (string, error) {
	if s.Password != "" {
		return s.Password, nil
	}
	if s.PasswordFile != "" {
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("cannot read kafka sasl password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if p := os.Getenv("MCPWATCH_KAFKA_SASL_PASSWORD"); p != "" {
		return p, nil
	}
	return "", errors.New("cannot configure kafka sasl: no password (set password, password_file or MCPWATCH_KAFKA_SASL_PASSWORD)")
}

func (t TLSConfig) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, documented
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read kafka tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot parse kafka tls ca_file %s: no PEM certificates", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load kafka tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// ProducerConfig bounds the producer. Zero fields take the defaults below.
type ProducerConfig struct {
	// MaxBatchBytes caps one produced batch (a Kafka "message" to the broker).
	// Default 900 KiB: under the broker's default 1 MB message.max.bytes, so a
	// batch is never rejected as MESSAGE_TOO_LARGE.
	MaxBatchBytes int32 `yaml:"max_batch_bytes"`
	// Linger waits this long for more records before sending a batch
	// (while a produce request is in flight, batches also grow on their
	// own: an idempotent producer has one in flight per broker). Default
	// 1ms: every OTLP request waits for its records' acks, so linger is
	// added to its latency (p50 at 20k events/s: 5.5 ms with 1ms, 13.9 ms
	// with 10ms; closed-loop throughput no lower). Measured in
	// internal/collector BenchmarkEndToEnd and BenchmarkPaced20k.
	Linger time.Duration `yaml:"linger"`
	// MaxBufferedRecords bounds records buffered in the client. Default 100000.
	MaxBufferedRecords int `yaml:"max_buffered_records"`
	// MaxBufferedBytes bounds the bytes of buffered records. Default 256 MiB.
	MaxBufferedBytes int `yaml:"max_buffered_bytes"`
	// Compression: snappy (default), lz4, zstd, gzip or none. Snappy
	// (franz-go's, klauspost's s2 encoder) costs the collector ~40% of
	// lz4's CPU per batch for ~30% more bytes on the broker
	// (BenchmarkPipelineStages/compress-*); compression runs on the
	// producer's one goroutine per broker, which every ack waits for.
	Compression string `yaml:"compression"`
	// DeliveryTimeout fails a record that could not be delivered in this
	// time, so nothing waits forever when Kafka is down. Default 10s.
	DeliveryTimeout time.Duration `yaml:"delivery_timeout"`
	// RecordGroupBytes: the events of one OTLP request with the same key
	// (tenant + agent) share one Kafka record, an OTLP logs request with
	// one log record per event, up to this many bytes. Fewer, larger
	// records cost the producer, the broker and the consumers less per
	// event (BenchmarkEndToEnd). Default 64 KiB; 1 writes one event per
	// record. Never more than max_batch_bytes allows.
	RecordGroupBytes int `yaml:"record_group_bytes"`
}

// DefaultCompression is the producer's codec when none is configured.
const DefaultCompression = "snappy"

// WithDefaults returns p with unset fields at their defaults.
func (p ProducerConfig) WithDefaults() ProducerConfig {
	if p.MaxBatchBytes == 0 {
		p.MaxBatchBytes = 900 << 10
	}
	if p.Linger == 0 {
		p.Linger = time.Millisecond
	}
	if p.MaxBufferedRecords == 0 {
		p.MaxBufferedRecords = 100000
	}
	if p.MaxBufferedBytes == 0 {
		p.MaxBufferedBytes = 256 << 20
	}
	if p.Compression == "" {
		p.Compression = DefaultCompression
	}
	if p.DeliveryTimeout == 0 {
		p.DeliveryTimeout = 10 * time.Second
	}
	if p.RecordGroupBytes == 0 {
		p.RecordGroupBytes = 64 << 10
	}
	return p
}

// Validate reports every problem with p at once.
func (p ProducerConfig) Validate() error {
	var errs []error
	if p.MaxBatchBytes < 0 || p.MaxBatchBytes > 1000000 {
		errs = append(errs, fmt.Errorf("kafka.producer.max_batch_bytes: %d must be in 1..1000000 (the broker's default message limit)", p.MaxBatchBytes))
	}
	if p.MaxBufferedRecords < 0 {
		errs = append(errs, fmt.Errorf("kafka.producer.max_buffered_records: %d must be positive", p.MaxBufferedRecords))
	}
	if p.MaxBufferedBytes < 0 {
		errs = append(errs, fmt.Errorf("kafka.producer.max_buffered_bytes: %d must be positive", p.MaxBufferedBytes))
	}
	if p.RecordGroupBytes < 0 {
		errs = append(errs, fmt.Errorf("kafka.producer.record_group_bytes: %d must be positive (1 = one event per record)", p.RecordGroupBytes))
	}
	if p.Linger < 0 || p.DeliveryTimeout < 0 {
		errs = append(errs, errors.New("kafka.producer: linger and delivery_timeout must not be negative"))
	}
	if _, err := codec(p.Compression); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "", "snappy":
		return kgo.SnappyCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("kafka.producer.compression: %q is not one of snappy, lz4, zstd, gzip, none", name)
}

// ProducerOpts are the options of docs/architecture.md: idempotent (franz-go's default),
// acks=all, compression, batches bounded in bytes under the 1 MB message
// limit, a small linger, and a bounded buffer so memory stays bounded.
func ProducerOpts(topic string, p ProducerConfig) []kgo.Opt {
	p = p.WithDefaults()
	c, _ := codec(p.Compression)
	return []kgo.Opt{
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(c),
		kgo.ProducerBatchMaxBytes(p.MaxBatchBytes),
		kgo.ProducerLinger(p.Linger),
		kgo.MaxBufferedRecords(p.MaxBufferedRecords),
		kgo.MaxBufferedBytes(p.MaxBufferedBytes),
		kgo.RecordDeliveryTimeout(p.DeliveryTimeout),
		// Let the delivery timeout fail records that are already in flight
		// when a broker dies, so the buffer drains and memory stays bounded.
		// A failed request is retried by its sender and may then land twice;
		// event_id is deterministic and consumers deduplicate on it.
		kgo.AllowIdempotentProduceCancellation(),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	}
}

// EnsureTopics creates the topics with cfg's partitions and replication
// factor; topics that already exist are fine.
func EnsureTopics(ctx context.Context, cl *kgo.Client, cfg Config, topics ...string) error {
	return ensureTopics(ctx, cl, cfg, nil, topics...)
}

func ensureTopics(ctx context.Context, cl *kgo.Client, cfg Config, configs map[string]*string, topics ...string) error {
	cfg = cfg.WithDefaults()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, cfg.Partitions, cfg.ReplicationFactor, configs, topics...)
	if err != nil {
		return fmt.Errorf("cannot create kafka topics %v: %w", topics, err)
	}
	var errs []error
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("cannot create kafka topic %s: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}

// EnsureSmallTopics creates topics of one partition (low-volume topics
// that every reader reads whole) like EnsureTopics.
func EnsureSmallTopics(ctx context.Context, cl *kgo.Client, cfg Config, topics ...string) error {
	cfg = cfg.WithDefaults()
	cfg.Partitions = 1
	return ensureTopics(ctx, cl, cfg, nil, topics...)
}

// EnsureCompactedTopics creates compacted topics (changelogs: the newest
// record of each key is kept) like EnsureTopics.
func EnsureCompactedTopics(ctx context.Context, cl *kgo.Client, cfg Config, topics ...string) error {
	compact := "compact"
	return ensureTopics(ctx, cl, cfg, map[string]*string{"cleanup.policy": &compact}, topics...)
}
