package collector

import (
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

func TestLoadConfigFiles(t *testing.T) {
	t.Setenv("ACME_OTLP_TOKEN", "x")
	tests := []struct {
		file    string
		wantErr []string // substrings; nil = valid
	}{
		{file: "testdata/minimal.yaml"},
		{file: "../../docs/collector.yaml"},
		{file: "testdata/typo.yaml", wantErr: []string{"brokerz"}},
		{file: "testdata/invalid.yaml", wantErr: []string{
			"receiver.http.endpoint", "receiver.http.tls: cert_file and key_file", "tokens[0]: set exactly one",
			"tokens[0].tenant", "max_request_bytes 1000 exceeds max_in_flight_bytes", "kafka.brokers",
			"kafka.sasl.mechanism", "max_batch_bytes", "compression", "log.level", "produce_timeout",
			`identity.agent_resource_attributes: group "service.name+": "" is not an attribute name`, "group 2 is empty",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := LoadConfig(tt.file, nil, nil)
			if err == nil {
				err = cfg.Validate()
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig("testdata/minimal.yaml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Receiver.HTTP.Endpoint != ":4318" || cfg.Receiver.GRPC.Endpoint != ":4317" || cfg.Admin.Endpoint != ":8888" {
		t.Errorf("endpoints %q %q %q", cfg.Receiver.HTTP.Endpoint, cfg.Receiver.GRPC.Endpoint, cfg.Admin.Endpoint)
	}
	if cfg.ProduceTimeout != 10*time.Second || cfg.Kafka.Topic != "mcpwatch.events.v1" || cfg.Kafka.Producer.MaxBatchBytes != 900<<10 {
		t.Errorf("defaults: produce_timeout %s topic %q max_batch_bytes %d", cfg.ProduceTimeout, cfg.Kafka.Topic, cfg.Kafka.Producer.MaxBatchBytes)
	}
	if got := strings.Join(cfg.Identity.AgentResourceAttributes, ","); got != "service.name+service.instance.id,host.name" {
		t.Errorf("identity.agent_resource_attributes default %q", got)
	}
}

// TestIdentityConfigReachesMapping: the configured chain is what both
// mapping paths (direct protobuf and pdata) use.
func TestIdentityConfigReachesMapping(t *testing.T) {
	cfg, err := LoadConfig("testdata/minimal.yaml", []string{"MCPWATCH_COLLECTOR_IDENTITY_AGENT_RESOURCE_ATTRIBUTES=k8s.pod.name,service.name+service.instance.id"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	o := cfg.Identity.MapOptions()
	if len(o.AgentResourceAttributes) != 2 || o.AgentResourceAttributes[0][0] != "k8s.pod.name" || o.AgentResourceAttributes[1][1] != "service.instance.id" {
		t.Fatalf("map options %v", o.AgentResourceAttributes)
	}
	td := mcpTraces(1, 1)
	td.ResourceSpans().At(0).Resource().Attributes().PutStr("k8s.pod.name", "pod-1")
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Remove("gen_ai.agent.id")
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetKind(ptrace.SpanKindClient)
	o.Tenant = "t"
	if b := event.FromTraces(td, o); len(b.Events) != 1 || b.Events[0].AgentID != "pod-1" {
		t.Fatalf("agent %+v", b.Events)
	}
	b, _, ok := event.TracesFromProto(protoBody(t, td), o)
	if !ok || len(b.Events) != 1 || b.Events[0].AgentID != "pod-1" {
		t.Fatalf("direct path: agent %+v", b.Events)
	}
}

func TestLoadConfigOverrides(t *testing.T) {
	env := []string{
		"MCPWATCH_COLLECTOR_KAFKA_BROKERS=a:1, b:2",
		"MCPWATCH_COLLECTOR_PRODUCE_TIMEOUT=3s",
		"MCPWATCH_COLLECTOR_RECEIVER_LIMITS_TENANT_RATES=acme=5,beta=-1",
		"MCPWATCH_COLLECTOR_RECEIVER_HTTP_ENDPOINT=127.0.0.1:1",
		"UNRELATED=1",
	}
	flags := map[string]string{"receiver.http.endpoint": "127.0.0.1:2", "kafka.create_topics": "false"}
	cfg, err := LoadConfig("testdata/minimal.yaml", env, flags)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Kafka.Brokers, ",") != "a:1,b:2" || cfg.ProduceTimeout != 3*time.Second {
		t.Errorf("env: brokers %v produce_timeout %s", cfg.Kafka.Brokers, cfg.ProduceTimeout)
	}
	if cfg.Receiver.Limits.TenantRates["acme"] != 5 || cfg.Receiver.Limits.TenantRates["beta"] != -1 {
		t.Errorf("tenant_rates %v", cfg.Receiver.Limits.TenantRates)
	}
	if cfg.Receiver.HTTP.Endpoint != "127.0.0.1:2" {
		t.Errorf("flag must win over env: %q", cfg.Receiver.HTTP.Endpoint)
	}
	if *cfg.Kafka.CreateTopics {
		t.Error("kafka.create_topics flag ignored")
	}
	if len(cfg.Receiver.Auth.Tokens) != 1 {
		t.Error("file-only tokens lost")
	}

	_, err = LoadConfig("", []string{"MCPWATCH_COLLECTOR_KAFKA_BROKERZ=x", "MCPWATCH_COLLECTOR_PRODUCE_TIMEOUT=soon"},
		map[string]string{"nope": "1"})
	for _, w := range []string{"MCPWATCH_COLLECTOR_KAFKA_BROKERZ: no such config key", "PRODUCE_TIMEOUT: cannot parse duration", "--nope"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want error mentioning %q, got %v", w, err)
		}
	}
}

func TestExampleConfigListsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../docs/collector.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ConfigKeys() {
		leaf := k[0][strings.LastIndex(k[0], ".")+1:]
		if !strings.Contains(string(b), leaf+":") {
			t.Errorf("docs/collector.yaml does not document %s", k[0])
		}
	}
}
