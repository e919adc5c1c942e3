// Package chserver starts a throwaway clickhouse-server for the plugin's
// tests, browser host and benchmark. The plugin is its own Go module and may
// not import the root module's internal/testbed, so this is a small copy of
// the same idea: generated config, temp dir, free loopback ports.
package chserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Binary is the server the Debian package installs.
const Binary = "/usr/sbin/clickhouse-server"

// Server is a running clickhouse-server process.
type Server struct {
	Addr string // native protocol, 127.0.0.1:port
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts clickhouse-server with its data under dir on free ports and
// waits until it answers. Users: "default" (no password) and "mcpwatch"
// (password "secret", for auth tests).
func Start(ctx context.Context, dir string) (*Server, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("cannot find %s (apt-get install -y clickhouse-server): %w", Binary, err)
	}
	var last error
	for range 3 {
		s, err := startOnce(ctx, dir)
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, last
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cannot pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startOnce(ctx context.Context, dir string) (*Server, error) {
	tcp, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("cannot create clickhouse dir: %w", err)
		}
	}
	cfg := filepath.Join(dir, "config.xml")
	if err := os.WriteFile(cfg, []byte(config(dir, tcp, httpPort)), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write clickhouse config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(users), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write clickhouse users: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "log", "stdout.log"))
	if err != nil {
		return nil, fmt.Errorf("cannot create clickhouse log: %w", err)
	}
	cmd := exec.Command(Binary, "--config-file="+cfg)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("cannot start clickhouse-server: %w", err)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp)), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := s.ping(ctx); err == nil {
			return s, nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			s.Stop()
			return nil, fmt.Errorf("cannot start clickhouse-server: %w", err)
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(filepath.Join(dir, "log", "clickhouse-server.err.log"))
			if len(b) > 2000 {
				b = b[len(b)-2000:]
			}
			return nil, fmt.Errorf("cannot start clickhouse-server: exited early: %s", b)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Server) ping(ctx context.Context) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.Addr}, DialTimeout: time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Ping(ctx)
}

// Stop terminates the server (SIGTERM, SIGKILL after 15 s) and waits.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Exec runs one statement as the default user.
func Exec(ctx context.Context, addr, query string) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("cannot open clickhouse connection: %w", err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, query); err != nil {
		return fmt.Errorf("cannot execute %q: %w", query, err)
	}
	return nil
}

// ErrNoSchema is returned when the schema directory cannot be found.
var ErrNoSchema = errors.New("cannot find schema/*.sql (run from inside the repository)")

// SchemaDir finds the repository's schema/ directory (the ClickHouse
// migrations the plugin shares with the analyzer) from the working directory
// upwards, or from MCPWATCH_SCHEMA_DIR.
func SchemaDir() (string, error) {
	if d := os.Getenv("MCPWATCH_SCHEMA_DIR"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cannot get working directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if m, _ := filepath.Glob(filepath.Join(d, "schema", "0*.sql")); len(m) > 0 {
			return filepath.Join(d, "schema"), nil
		}
		if filepath.Dir(d) == d {
			return "", ErrNoSchema
		}
	}
}

// CreateSchema creates database db and applies every schema/*.sql migration
// in order (`{db}` replaced by the database name).
func CreateSchema(ctx context.Context, addr, db string) error {
	dir, err := SchemaDir()
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return fmt.Errorf("cannot list migrations: %w", err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second,
		Settings: clickhouse.Settings{"allow_experimental_low_cardinality_type": 1}})
	if err != nil {
		return fmt.Errorf("cannot open clickhouse connection: %w", err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return fmt.Errorf("cannot create database %s: %w", db, err)
	}
	for _, f := range files { // Glob returns sorted names: 0001_, 0002_, ...
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("cannot read migration: %w", err)
		}
		for _, sql := range statements(replaceDB(string(b), db)) {
			if err := conn.Exec(ctx, sql); err != nil {
				return fmt.Errorf("cannot apply migration %s: %w", filepath.Base(f), err)
			}
		}
	}
	return nil
}

// statements splits a migration on a ';' that ends a line (as the
// analyzer's migration runner does); comment lines are kept.
func statements(sql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.SplitAfter(sql, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasSuffix(t, ";") && !strings.HasPrefix(t, "--") {
			cur.WriteString(strings.TrimSuffix(strings.TrimRight(line, " \t\r\n"), ";"))
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	if s := cur.String(); strings.TrimSpace(s) != "" {
		out = append(out, s)
	}
	return out
}

func replaceDB(s, db string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if i+4 <= len(s) && s[i:i+4] == "{db}" {
			out = append(out, db...)
			i += 3
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}

func config(dir string, tcp, httpPort int) string {
	return fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>%[1]s/log/clickhouse-server.log</log><errorlog>%[1]s/log/clickhouse-server.err.log</errorlog><size>100M</size><count>2</count></logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>%[2]d</tcp_port>
    <http_port>%[3]d</http_port>
    <max_connections>1024</max_connections>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>%[1]s/data/</path>
    <tmp_path>%[1]s/tmp/</tmp_path>
    <user_files_path>%[1]s/user_files/</user_files_path>
    <format_schema_path>%[1]s/format_schemas/</format_schema_path>
    <users_config>%[1]s/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
`, dir, tcp, httpPort)
}

const users = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <mcpwatch>
            <password>secret</password>
            <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </mcpwatch>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`

// BuildAnalyzer builds the repository's analyzer (cmd/analyzer, the root
// module) into dir and returns the binary's path: the plugin's tests and
// benchmark run its `seal` subcommand to seal the rollup exactly as the
// analyzer does, without importing the root module.
func BuildAnalyzer(ctx context.Context, dir string) (string, error) {
	schema, err := SchemaDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "analyzer")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/analyzer")
	cmd.Dir = filepath.Dir(schema)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cannot build the analyzer: %w: %s", err, out)
	}
	return bin, nil
}

// Seal runs `analyzer seal` (bin from BuildAnalyzer) on database db: every
// closed minute and hour of the calls rollup is sealed, as the running
// analyzer does every 30 s. margin and grace are the analyzer's
// rollup.margin (inserts younger than it are not sealed yet) and
// rollup.grace (minutes that ended less than grace ago stay open); 0 means
// the default.
func Seal(ctx context.Context, bin, addr, db string, margin, grace time.Duration) (string, error) {
	cfg := fmt.Sprintf("clickhouse:\n  addr: [%q]\n  database: %q\nrollup:\n  margin: %s\n  grace: %s\nlog:\n  format: text\n", addr, db, margin, grace)
	f, err := os.CreateTemp("", "mcpwatch-seal-*.yaml")
	if err != nil {
		return "", fmt.Errorf("cannot write seal config: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(cfg); err != nil {
		f.Close()
		return "", fmt.Errorf("cannot write seal config: %w", err)
	}
	f.Close()
	out, err := exec.CommandContext(ctx, bin, "seal", "-config", f.Name()).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("cannot seal: %w: %s", err, out)
	}
	return string(out), nil
}
