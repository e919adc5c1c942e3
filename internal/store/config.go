package store

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// Defaults for Config; each is documented on its field.
const (
	DefaultAddr        = "127.0.0.1:9000"
	DefaultDatabase    = "mcpwatch"
	DefaultUsername    = "default"
	DefaultDialTimeout = 10 * time.Second
	DefaultReadTimeout = 5 * time.Minute
	DefaultMaxConns    = 8
	// DefaultInsertTimeout and DefaultPingTimeout are well under a minute:
	// a frozen server (SIGSTOP, a hung disk) must show as failing writes,
	// not as one insert blocked for read_timeout (docs/security.md).
	DefaultInsertTimeout = 30 * time.Second
	DefaultPingTimeout   = 5 * time.Second
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Config is how mcpwatch reaches ClickHouse over the native protocol.
type Config struct {
	// Addr lists native-protocol endpoints (host:port). Default ["127.0.0.1:9000"].
	Addr []string `yaml:"addr"`
	// Database holds every mcpwatch table; it is created by Migrate.
	// Letters, digits and underscore only. Default "mcpwatch".
	Database string `yaml:"database"`
	// Username to log in with. Default "default".
	Username string `yaml:"username"`
	// Password in clear; prefer PasswordFile or PasswordEnv. Default "".
	Password string `yaml:"password"`
	// PasswordFile is read at Open; trailing newlines are trimmed. Default "".
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names an environment variable holding the password. Default "".
	PasswordEnv string `yaml:"password_env"`
	// DialTimeout bounds one connection attempt. Default 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ReadTimeout bounds one read from the server (a long query). Inserts
	// and pings have their own, shorter deadlines below. Default 5m.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// InsertTimeout bounds one write (events, findings, tool definitions),
	// from sending its rows to the server's acknowledgement; past it the
	// connection is closed and the write fails (the analyzer retries it).
	// Default 30s.
	InsertTimeout time.Duration `yaml:"insert_timeout"`
	// PingTimeout bounds one ping (readiness, recovery probe). Default 5s.
	PingTimeout time.Duration `yaml:"ping_timeout"`
	// MaxOpenConns caps the connection pool. Default 8.
	MaxOpenConns int `yaml:"max_open_conns"`
	// TLS to the server (native secure port, usually 9440).
	TLS TLSConfig `yaml:"tls"`
	// Cluster selects the cluster profile: every table is created ON CLUSTER
	// as a local (Replicated)MergeTree table behind a Distributed table of
	// the name the code queries (see cluster.go and docs/deploy.md).
	// Default: unset, a single server.
	Cluster ClusterConfig `yaml:"cluster"`
}

// ClusterConfig is the cluster profile of the schema. With Name empty (the
// default) mcpwatch runs on one server and nothing here applies.
type ClusterConfig struct {
	// Name is the cluster as the servers' remote_servers configuration names
	// it; DDL runs ON CLUSTER Name and the Distributed tables spread over it.
	// Letters, digits and underscore only. Default "" (single server).
	Name string `yaml:"name"`
	// Replicated makes the local tables Replicated*MergeTree with the
	// ZooKeeper path /clickhouse/tables/{shard}/<database>/<table> and
	// replica name {replica} (macros every server defines). false: plain
	// *MergeTree local tables, sharded without replicas. Default false; a
	// production cluster sets true.
	Replicated bool `yaml:"replicated"`
}

// Enabled says whether the cluster profile is on.
func (c ClusterConfig) Enabled() bool { return c.Name != "" }

// TLSConfig enables TLS to ClickHouse.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// WithDefaults returns c with every unset field at its documented default.
func (c Config) WithDefaults() Config {
	if len(c.Addr) == 0 {
		c.Addr = []string{DefaultAddr}
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.Username == "" {
		c.Username = DefaultUsername
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = DefaultMaxConns
	}
	if c.InsertTimeout == 0 {
		c.InsertTimeout = DefaultInsertTimeout
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	return c
}

// Validate reports every problem with c at once. Call it on a config with
// defaults applied.
func (c Config) Validate() error {
	var errs []error
	if len(c.Addr) == 0 {
		errs = append(errs, errors.New("clickhouse.addr: at least one address is required"))
	}
	for _, a := range c.Addr {
		if !strings.Contains(a, ":") {
			errs = append(errs, fmt.Errorf("clickhouse.addr: %q must be host:port", a))
		}
	}
	if !identRE.MatchString(c.Database) {
		errs = append(errs, fmt.Errorf("clickhouse.database: %q must be letters, digits and underscore", c.Database))
	}
	n := 0
	for _, s := range []string{c.Password, c.PasswordFile, c.PasswordEnv} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, errors.New("clickhouse: set only one of password, password_file, password_env"))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, errors.New("clickhouse.dial_timeout: must not be negative"))
	}
	if c.ReadTimeout < 0 {
		errs = append(errs, errors.New("clickhouse.read_timeout: must not be negative"))
	}
	if c.InsertTimeout < 0 {
		errs = append(errs, errors.New("clickhouse.insert_timeout: must not be negative"))
	}
	if c.PingTimeout < 0 {
		errs = append(errs, errors.New("clickhouse.ping_timeout: must not be negative"))
	}
	if c.MaxOpenConns < 0 {
		errs = append(errs, errors.New("clickhouse.max_open_conns: must not be negative"))
	}
	if c.Cluster.Name != "" && !identRE.MatchString(c.Cluster.Name) {
		errs = append(errs, fmt.Errorf("clickhouse.cluster.name: %q must be letters, digits and underscore", c.Cluster.Name))
	}
	if c.Cluster.Name == "" && c.Cluster.Replicated {
		errs = append(errs, errors.New("clickhouse.cluster.replicated: set but clickhouse.cluster.name is empty (the single-server profile has no replicas)"))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("clickhouse.tls: cert_file and key_file go together"))
	}
	if !c.TLS.Enabled && (c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.InsecureSkipVerify) {
		errs = append(errs, errors.New("clickhouse.tls: options are set but tls.enabled is false"))
	}
	return errors.Join(errs...)
}

// password resolves the configured secret; it is never logged.
func (c Config) password() (string, error) {
	switch {
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("cannot read clickhouse password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case c.PasswordEnv != "":
		v, ok := os.LookupEnv(c.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("cannot read clickhouse password: environment variable %s is not set", c.PasswordEnv)
		}
		return v, nil
	}
	return c.Password, nil
}

func (t TLSConfig) build() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read clickhouse CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot parse clickhouse CA file %s", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load clickhouse client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
