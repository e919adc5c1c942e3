package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ClickHouseBinary is the server the Debian package installs.
const ClickHouseBinary = "/usr/sbin/clickhouse-server"

// CH is one fresh database on a ClickHouse server.
type CH struct {
	// Addr is the native protocol endpoint, "127.0.0.1:port".
	Addr string
	// HTTPAddr is the HTTP endpoint, "127.0.0.1:port" ("" with
	// MCPWATCH_TEST_CLICKHOUSE unless MCPWATCH_TEST_CLICKHOUSE_HTTP is set).
	HTTPAddr string
	// Database is created empty for this CH and dropped with it.
	Database string
	// Username is "default", with no password.
	Username string
}

// Options returns clickhouse-go options for the native protocol (the only one
// that works with 18.16) on this database.
func (c *CH) Options() *clickhouse.Options {
	return &clickhouse.Options{
		Addr:        []string{c.Addr},
		Auth:        clickhouse.Auth{Database: c.Database, Username: c.Username},
		Protocol:    clickhouse.Native,
		DialTimeout: 5 * time.Second,
		Settings:    clickhouse.Settings{"allow_experimental_low_cardinality_type": 1},
	}
}

// Open opens a native clickhouse-go connection to this database.
func (c *CH) Open(ctx context.Context) (driver.Conn, error) {
	conn, err := clickhouse.Open(c.Options())
	if err != nil {
		return nil, fmt.Errorf("cannot open clickhouse connection: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("cannot ping clickhouse at %s: %w", c.Addr, err)
	}
	return conn, nil
}

// Conn opens a connection for a test and closes it in t.Cleanup.
func (c *CH) Conn(t testing.TB) driver.Conn {
	t.Helper()
	conn, err := c.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// CHServer is a clickhouse-server process with its own config and data dir.
type CHServer struct {
	Addr     string // native, 127.0.0.1:port
	HTTPAddr string // HTTP, 127.0.0.1:port
	dir      string
	p        *proc
}

// StartClickHouse starts clickhouse-server with a generated config under dir
// (data, tmp, logs) on free loopback ports and waits until it answers
// SELECT 1 over the native protocol. stop terminates it (SIGTERM, then
// SIGKILL) and waits; it does not remove dir.
func StartClickHouse(ctx context.Context, dir string) (*CHServer, func(), error) {
	if _, err := os.Stat(ClickHouseBinary); err != nil {
		return nil, nil, fmt.Errorf("cannot find %s (%s): %w", ClickHouseBinary, installHint, err)
	}
	var lastErr error
	// A free port can be taken between choosing and binding; retry a few times.
	for range 3 {
		s, err := startClickHouseOnce(ctx, dir)
		if err == nil {
			return s, s.Stop, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, lastErr
}

func startClickHouseOnce(ctx context.Context, dir string) (*CHServer, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("cannot create clickhouse dir: %w", err)
		}
	}
	cfgPath := filepath.Join(dir, "config.xml")
	if err := os.WriteFile(cfgPath, []byte(chConfig(dir, ports[0], ports[1])), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write clickhouse config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(chUsers), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write clickhouse users: %w", err)
	}
	logPath := filepath.Join(dir, "log", "stdout.log")
	cmd := exec.Command(ClickHouseBinary, "--config-file="+cfgPath)
	cmd.Dir = dir
	p, err := startProc(cmd, logPath)
	if err != nil {
		return nil, err
	}
	s := &CHServer{
		Addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		HTTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		dir:      dir,
		p:        p,
	}
	err = waitFor(60*time.Second, p, func() error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return pingClickHouse(ctx, s.Addr)
	})
	if err != nil {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("cannot start clickhouse-server: %w\n%s\n%s", err,
			tail(logPath, 2000), tail(filepath.Join(dir, "log", "clickhouse-server.err.log"), 2000))
	}
	return s, nil
}

// Stop terminates the server and waits for it.
func (s *CHServer) Stop() { s.p.stop(15 * time.Second) }

// Restart starts a stopped (or killed) server again on the same ports and
// data, and waits until it answers. Stop (or the stop function returned by
// StartClickHouse) stops the restarted process.
func (s *CHServer) Restart(ctx context.Context) error {
	if !s.p.exited() {
		return errors.New("cannot restart clickhouse: it is still running")
	}
	logPath := filepath.Join(s.dir, "log", "stdout.log")
	cmd := exec.Command(ClickHouseBinary, "--config-file="+filepath.Join(s.dir, "config.xml"))
	cmd.Dir = s.dir
	p, err := startProc(cmd, logPath)
	if err != nil {
		return err
	}
	s.p = p
	err = waitFor(60*time.Second, p, func() error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return pingClickHouse(ctx, s.Addr)
	})
	if err != nil {
		return fmt.Errorf("cannot restart clickhouse-server: %w\n%s", err, tail(logPath, 2000))
	}
	return nil
}

// Signal sends sig to the server process: SIGSTOP freezes it (it keeps its
// ports and accepts connections but answers nothing), SIGCONT thaws it.
func (s *CHServer) Signal(sig os.Signal) error { return s.p.cmd.Process.Signal(sig) }

// Kill SIGKILLs the server (for crash tests) and waits.
func (s *CHServer) Kill() { s.p.kill() }

// Dir is the server's config and data directory.
func (s *CHServer) Dir() string { return s.dir }

// CreateDatabase creates a database on the server and returns a CH for it.
func (s *CHServer) CreateDatabase(ctx context.Context, name string) (*CH, error) {
	if err := createDatabase(ctx, s.Addr, name); err != nil {
		return nil, err
	}
	return &CH{Addr: s.Addr, HTTPAddr: s.HTTPAddr, Database: name, Username: "default"}, nil
}

func pingClickHouse(ctx context.Context, addr string) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: clickhouse.Native, DialTimeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	var one uint8
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

func adminExec(ctx context.Context, addr, query string) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: clickhouse.Native, DialTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("cannot open clickhouse connection: %w", err)
	}
	defer conn.Close()
	return conn.Exec(ctx, query)
}

func createDatabase(ctx context.Context, addr, name string) error {
	if err := adminExec(ctx, addr, "CREATE DATABASE IF NOT EXISTS "+name); err != nil {
		return fmt.Errorf("cannot create database %s: %w", name, err)
	}
	return nil
}

// uniqueName returns prefix + 12 random hex characters (a valid identifier).
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

var (
	sharedCHOnce sync.Once
	sharedCH     *CHServer
	sharedCHErr  error
)

// sharedClickHouse starts (once per test binary) the server all tests of the
// binary share; Cleanup stops it.
func sharedClickHouse() (addr, httpAddr string, err error) {
	if a := os.Getenv("MCPWATCH_TEST_CLICKHOUSE"); a != "" {
		return a, os.Getenv("MCPWATCH_TEST_CLICKHOUSE_HTTP"), nil
	}
	sharedCHOnce.Do(func() {
		dir, err := newSharedDir("clickhouse")
		if err != nil {
			sharedCHErr = err
			return
		}
		s, stop, err := StartClickHouse(context.Background(), dir)
		if err != nil {
			os.RemoveAll(dir)
			sharedCHErr = err
			return
		}
		sharedCH = s
		registerCleanup(func() {
			stop()
			os.RemoveAll(dir)
		})
	})
	if sharedCHErr != nil {
		return "", "", sharedCHErr
	}
	return sharedCH.Addr, sharedCH.HTTPAddr, nil
}

// ClickHouse returns a fresh, empty database on a ClickHouse server. The
// server is started once per test binary (startup takes seconds) and shared;
// the database is dropped in t.Cleanup. With MCPWATCH_TEST_CLICKHOUSE=host:port
// an existing server is used instead. Fails the test (never skips) when the
// server cannot start.
func ClickHouse(t testing.TB) *CH {
	t.Helper()
	addr, httpAddr, err := sharedClickHouse()
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	name := uniqueName("test_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := createDatabase(ctx, addr, name); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, addr, "DROP DATABASE IF EXISTS "+name); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("testbed: cannot drop database %s: %v", name, err)
		}
	})
	return &CH{Addr: addr, HTTPAddr: httpAddr, Database: name, Username: "default"}
}

// OwnClickHouse starts a server for this test alone (for tests that kill or
// restart it); it is stopped in t.Cleanup. The returned CH has a fresh
// database.
func OwnClickHouse(t testing.TB) (*CH, *CHServer) {
	t.Helper()
	s, stop, err := StartClickHouse(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(stop)
	ch, err := s.CreateDatabase(context.Background(), uniqueName("test_"))
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return ch, s
}

func chConfig(dir string, tcpPort, httpPort int) string {
	return fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>%[1]s/log/clickhouse-server.log</log>
        <errorlog>%[1]s/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>%[2]d</tcp_port>
    <http_port>%[3]d</http_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
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
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <merge_tree>
        <max_suspicious_broken_parts>5</max_suspicious_broken_parts>
    </merge_tree>
</yandex>
`, dir, tcpPort, httpPort)
}

const chUsers = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`
