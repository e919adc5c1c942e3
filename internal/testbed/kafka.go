package testbed

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kafka is a running Kafka cluster: kfake in this process, or an Apache
// Kafka broker in a child JVM. Stop and Start stop and restart it on the same
// ports and data directory (for fault tests); records survive a restart.
type Kafka struct {
	// Brokers are the seed brokers, "127.0.0.1:port".
	Brokers []string
	// Kind is "kfake", "apache" or "external" (MCPWATCH_TEST_KAFKA).
	Kind string

	mu      sync.Mutex
	running bool
	start   func() error
	stop    func()
	cluster *kfake.Cluster // kfake only
}

// Cluster returns the kfake cluster (nil for other kinds), e.g. for
// ControlKey fault injection. It changes after a restart.
func (k *Kafka) Cluster() *kfake.Cluster {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cluster
}

// Stop stops the cluster; Brokers refuse connections until Start.
func (k *Kafka) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.running || k.stop == nil {
		return
	}
	k.stop()
	k.running = false
}

// Start restarts a stopped cluster on the same ports and data directory.
func (k *Kafka) Start() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.running {
		return nil
	}
	if k.start == nil {
		return errors.New("cannot restart an external Kafka")
	}
	if err := k.start(); err != nil {
		return err
	}
	k.running = true
	return nil
}

// Running reports whether the cluster is up (as far as the testbed knows).
func (k *Kafka) Running() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.running
}

// Client returns a franz-go client for these brokers, closed in t.Cleanup.
func (k *Kafka) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("testbed: cannot create kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates a topic with the given partitions (replication 1).
func (k *Kafka) CreateTopic(ctx context.Context, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	if err != nil {
		return fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil {
		return fmt.Errorf("cannot create topic %s: %w", topic, err)
	}
	if resp.Err != nil && !strings.Contains(resp.Err.Error(), "TOPIC_ALREADY_EXISTS") {
		return fmt.Errorf("cannot create topic %s: %w", topic, resp.Err)
	}
	return nil
}

// StartKfake starts a single-broker kfake cluster persisting to dir on a free
// loopback port (unless opts set Ports). The returned Kafka can be stopped
// and restarted on the same port and dir; call Stop when done.
func StartKfake(dir string, opts ...kfake.Opt) (*Kafka, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	base := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir)}
	all := append(base, opts...) // caller options win (applied last)
	k := &Kafka{Kind: "kfake"}
	k.start = func() error {
		c, err := kfake.NewCluster(all...)
		if err != nil {
			return fmt.Errorf("cannot start kfake: %w", err)
		}
		k.cluster = c
		k.Brokers = c.ListenAddrs()
		return nil
	}
	k.stop = func() {
		k.cluster.Close()
	}
	if err := k.start(); err != nil {
		return nil, err
	}
	k.running = true
	return k, nil
}

// Kfake starts a kfake cluster (one broker, free port, DataDir in
// t.TempDir()) and stops it in t.Cleanup. opts are appended (e.g.
// kfake.AllowAutoTopicCreation(), kfake.SeedTopics(...), kfake.SyncWrites()).
func Kfake(t testing.TB, opts ...kfake.Opt) *Kafka {
	t.Helper()
	k, err := StartKfake(t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(k.Stop)
	return k
}

// KafkaLibDir is where scripts/install-kafka.sh puts the Apache Kafka jars.
func KafkaLibDir() string { return filepath.Join(CacheDir(), "kafka", "lib") }

// StartApacheKafka formats a KRaft storage dir under dir and starts a
// single-node Apache Kafka (broker + controller) from the Maven jars on Java,
// on free loopback ports; it waits until a client can read metadata.
func StartApacheKafka(ctx context.Context, dir string) (*Kafka, error) {
	var err error
	// A free port can be taken by another test between choosing and
	// binding (the broker then exits with a BindException); start again on
	// other ports, in a fresh directory, a few times.
	for attempt := range 3 {
		var k *Kafka
		k, err = startApacheKafkaOnce(ctx, filepath.Join(dir, fmt.Sprint("attempt-", attempt)))
		if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "Address already in use") {
			return k, err
		}
	}
	return nil, err
}

// kafkaPorts picks the broker's ports (a variable for the retry test).
var kafkaPorts = freePorts

func startApacheKafkaOnce(ctx context.Context, dir string) (*Kafka, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", dir, err)
	}
	lib := KafkaLibDir()
	jars, _ := filepath.Glob(filepath.Join(lib, "kafka_2.13-*.jar"))
	if len(jars) == 0 {
		return nil, fmt.Errorf("cannot find the Apache Kafka jars in %s: %s", lib, installHint)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("cannot find java (Java 17): %s: %w", installHint, err)
	}
	ports, err := kafkaPorts(2)
	if err != nil {
		return nil, err
	}
	broker := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	controller := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	dataDir := filepath.Join(dir, "data")
	props := filepath.Join(dir, "server.properties")
	log4j := filepath.Join(dir, "log4j.properties")
	logPath := filepath.Join(dir, "kafka.log")
	if err := os.WriteFile(props, []byte(kafkaProperties(broker, controller, dataDir)), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write server.properties: %w", err)
	}
	if err := os.WriteFile(log4j, []byte(kafkaLog4j), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write log4j.properties: %w", err)
	}
	jvm := []string{"-Xms256m", "-Xmx768m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
		"-Dlog4j.configuration=file:" + log4j, "-cp", filepath.Join(lib, "*")}

	id := make([]byte, 16)
	_, _ = rand.Read(id)
	clusterID := base64.RawURLEncoding.EncodeToString(id)
	// "--cluster-id=<id>": a base64 id may start with '-', which the tool's
	// argument parser would take for an option.
	format := exec.CommandContext(ctx, java, append(jvm, "kafka.tools.StorageTool", "format", "--cluster-id="+clusterID, "--config="+props)...)
	if out, err := format.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cannot format kafka storage: %w\n%s", err, out)
	}

	k := &Kafka{Kind: "apache", Brokers: []string{broker}}
	var p *proc
	k.start = func() error {
		cmd := exec.Command(java, append(jvm, "kafka.Kafka", props)...)
		cmd.Dir = dir
		var err error
		p, err = startProc(cmd, logPath)
		if err != nil {
			return err
		}
		// Not ctx: Start runs again later, for restarts, after ctx may be gone.
		err = waitFor(2*time.Minute, p, func() error { return pingKafka(context.Background(), k.Brokers) })
		if err != nil {
			p.stop(5 * time.Second)
			return fmt.Errorf("cannot start apache kafka: %w\n%s", err, tail(logPath, 3000))
		}
		return nil
	}
	k.stop = func() { p.stop(30 * time.Second) }
	if err := k.start(); err != nil {
		return nil, err
	}
	k.running = true
	return k, nil
}

// ApacheKafka starts a real single-node KRaft Apache Kafka for the test and
// stops it in t.Cleanup. With MCPWATCH_TEST_KAFKA=host:port,... it uses
// those brokers instead (Stop/Start are then unavailable). It fails, never
// skips, when the jars or Java are missing.
func ApacheKafka(t testing.TB) *Kafka {
	t.Helper()
	if b := os.Getenv("MCPWATCH_TEST_KAFKA"); b != "" {
		return &Kafka{Kind: "external", Brokers: strings.Split(b, ","), running: true}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k, err := StartApacheKafka(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(k.Stop)
	return k
}

// pingKafka succeeds when the cluster answers a metadata request with at
// least one broker and a controller.
func pingKafka(ctx context.Context, brokers []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return err
	}
	if len(md.Brokers) == 0 || md.Controller < 0 {
		return fmt.Errorf("no brokers or no controller yet (controller %d)", md.Controller)
	}
	return nil
}

func kafkaProperties(broker, controller, dataDir string) string {
	return fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.voters=1@%[2]s
listeners=PLAINTEXT://%[1]s,CONTROLLER://%[2]s
advertised.listeners=PLAINTEXT://%[1]s
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=%[3]s
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
`, broker, controller, dataDir)
}

const kafkaLog4j = `log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
`
