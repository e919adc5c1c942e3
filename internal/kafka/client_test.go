package kafka

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEnsureTopicsAndProduce(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := Config{Brokers: c.ListenAddrs(), Partitions: 3}.WithDefaults()
	cl, err := NewClient(cfg, ProducerOpts(cfg.Topic, cfg.Producer)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ { // the second call finds the topic already there
		if err := EnsureTopics(ctx, cl, cfg, cfg.Topic); err != nil {
			t.Fatalf("EnsureTopics #%d: %v", i, err)
		}
	}
	// A batch of records whose sum is over 1 MB must still be accepted: the
	// producer splits batches under MaxBatchBytes.
	val := make([]byte, 100<<10)
	var recs []*kgo.Record
	for i := 0; i < 30; i++ {
		recs = append(recs, &kgo.Record{Key: []byte("k"), Value: val})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce 3 MB under one key: %v", err)
	}
}

func TestProducerConfigValidate(t *testing.T) {
	bad := ProducerConfig{MaxBatchBytes: 2 << 20, Compression: "brotli", MaxBufferedRecords: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"max_batch_bytes", "compression", "max_buffered_records"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if err := (ProducerConfig{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "admin", "adminpw"), kfake.User("SCRAM-SHA-512", "mcp", "s3cret"), kfake.User("PLAIN", "plain", "p"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	pwFile := dir + "/pw"
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sasl SASLConfig
		ok   bool
	}{
		{"scram-256", SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "admin", Password: "adminpw"}, true},
		{"scram-512 from file", SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "mcp", PasswordFile: pwFile}, true},
		{"plain", SASLConfig{Mechanism: "PLAIN", Username: "plain", Password: "p"}, true},
		{"wrong password", SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "admin", Password: "nope"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Brokers: c.ListenAddrs(), SASL: tt.sasl, DialTimeout: 2 * time.Second}
			cl, err := NewClient(cfg, kgo.RequestRetries(0))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = cl.Ping(ctx)
			if (err == nil) != tt.ok {
				t.Errorf("ping: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestProducerCompression: every configured codec is the one the batches
// carry (a consumer reads it from the batch attributes), the default is
// snappy, and what was produced is read back unchanged.
func TestProducerCompression(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// codec numbers of the record batch attributes (Kafka protocol)
	want := map[string]uint8{"": 2, "snappy": 2, "lz4": 3, "zstd": 4, "gzip": 1, "none": 0}
	val := []byte(strings.Repeat(`{"tool":"read_file","path":"/etc/passwd"} `, 200))
	var order []string
	for _, name := range []string{"", "snappy", "lz4", "zstd", "gzip", "none"} {
		order = append(order, name)
		p, err := NewClient(Config{Brokers: c.ListenAddrs()}.WithDefaults(), ProducerOpts("t", ProducerConfig{Compression: name})...)
		if err != nil {
			t.Fatal(err)
		}
		err = p.ProduceSync(ctx, &kgo.Record{Key: []byte(name), Value: val}).FirstErr()
		p.Close()
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*kgo.Record
	for len(got) < len(order) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fs.Records()...)
	}
	for i, r := range got {
		name := order[i]
		if string(r.Key) != name || !bytes.Equal(r.Value, val) {
			t.Errorf("record %d (%q): key %q, value of %d bytes changed", i, name, r.Key, len(r.Value))
		}
		if codec := r.Attrs.CompressionType(); codec != want[name] {
			t.Errorf("compression %q: batch codec %d, want %d", name, codec, want[name])
		}
	}
}
