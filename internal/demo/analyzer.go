package demo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// startAnalyzer starts cmd/analyzer against the stack's Kafka and ClickHouse
// (it migrates the database on start) and waits for its /readyz.
func (s *Stack) startAnalyzer(ctx context.Context, bin, root string) error {
	_ = root
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	admin := "127.0.0.1:" + strconv.Itoa(ports[0])
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
  topic: %s
clickhouse:
  addr: [%s]
  database: %s
analyzer:
  group: mcpwatch-demo
  batch_interval: 200ms
  admin_addr: "%s"
log:
  level: info
  format: text
`, strings.Join(s.Kafka.Brokers, ", "), s.Topic, s.CH.Addr, s.CH.Database, admin)
	path := filepath.Join(s.Dir, "analyzer.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("cannot write analyzer config: %w", err)
	}
	cmd := exec.Command(bin, "run", "--config", path)
	cmd.Env = os.Environ()
	s.AnalyzerURL = "http://" + admin
	if err := s.startChild(ctx, "analyzer", cmd, s.AnalyzerURL+"/readyz"); err != nil {
		s.AnalyzerURL = ""
		return err
	}
	return nil
}

// collectAnalysis fills in what the analyzer produced: it waits until every
// record in Kafka is an event row in ClickHouse, then reads the incidents.
func (s *Stack) collectAnalysis(ctx context.Context, r *Report) error {
	if s.AnalyzerURL == "" {
		return nil
	}
	s.log.Info("waiting for the analyzer to write every event to ClickHouse", "events", r.KafkaRecords)
	if _, err := s.waitForEvents(ctx, uint64(r.KafkaRecords), 2*time.Minute); err != nil {
		return fmt.Errorf("cannot see every event in ClickHouse: %w\n%s", err, tailLog(s, "analyzer"))
	}
	return s.queryClickHouse(ctx, r)
}

func tailLog(s *Stack, name string) string {
	b, err := os.ReadFile(s.LogPath(name))
	if err != nil {
		return ""
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
