package enrich

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func loadConfig(t *testing.T, path string) (Config, error) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // as the analyzer decodes its config
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func TestConfigFiles(t *testing.T) {
	c, err := loadConfig(t, "testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c != (Config{SessionGap: 45 * time.Minute, MaxAgents: 20000, KeepSessions: 4}) {
		t.Fatalf("config %+v", c)
	}
	if _, err := loadConfig(t, "testdata/typo.yaml"); err == nil || !strings.Contains(err.Error(), "session_gaps") {
		t.Fatalf("typo: %v", err)
	}
	_, err = loadConfig(t, "testdata/invalid.yaml")
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, w := range []string{"session_gap", "max_agents", "keep_sessions"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %s", err, w)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	c := Config{}.WithDefaults()
	if c.SessionGap != 30*time.Minute || c.MaxAgents != 100000 || c.KeepSessions != 8 {
		t.Fatalf("defaults %+v", c)
	}
	if _, err := New(Config{SessionGap: -time.Second}, Options{}); err == nil {
		t.Fatal("New accepted an invalid config")
	}
}
