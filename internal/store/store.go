// Package store is mcpwatch's ClickHouse layer: the migrations runner, the
// columnar writers used by the analyzer, retention, and the typed queries
// shared by the API and the Grafana backend.
//
// Everything here runs on ClickHouse 18.16 and on current releases (docs/architecture.md
// §4), through clickhouse-go/v2's native protocol. What that pins down:
// every INSERT lists its columns; bulk inserts append whole columns
// (batch.Column(i).Append); per-query settings carry only int or bool
// values; user input reaches SQL only as bound `?` parameters, and a set of
// values is bound as an array and tested with has(?, column) (an `IN ?`
// with a slice does not work on 18.16).
package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Store is a connection pool to one mcpwatch database.
type Store struct {
	conn    driver.Conn
	db      string
	cluster ClusterConfig // the cluster profile; zero = one server
	// insertTimeout and pingTimeout bound each write and ping (Config).
	insertTimeout, pingTimeout time.Duration

	mu       sync.Mutex
	toolDefs map[toolDefKey]toolDefSeen // nil until loaded

	colBufs colBufPool // InsertEvents' column slices, reused
}

// Open connects to ClickHouse and checks the connection with a ping. It
// does not create the database; call Migrate for that.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot open clickhouse: invalid config: %w", err)
	}
	pw, err := cfg.password()
	if err != nil {
		return nil, err
	}
	tc, err := cfg.TLS.build()
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     cfg.Addr,
		Auth: clickhouse.Auth{
			// The database is not set on the session: it may not exist yet,
			// and every statement names its tables fully.
			Username: cfg.Username,
			Password: pw,
		},
		TLS:              tc,
		DialTimeout:      cfg.DialTimeout,
		ReadTimeout:      cfg.ReadTimeout,
		MaxOpenConns:     cfg.MaxOpenConns,
		MaxIdleConns:     cfg.MaxOpenConns,
		Compression:      &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
		ClientInfo:       clickhouse.ClientInfo{Products: []struct{ Name, Version string }{{Name: "mcpwatch", Version: "1"}}},
		Settings:         cfg.Cluster.connSettings(),
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open clickhouse: %w", err)
	}
	s := &Store{conn: conn, db: cfg.Database, cluster: cfg.Cluster, insertTimeout: cfg.InsertTimeout, pingTimeout: cfg.PingTimeout}
	if err := s.Ping(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the pool.
func (s *Store) Close() error { return s.conn.Close() }

// Database is the database every table lives in.
func (s *Store) Database() string { return s.db }

// Ping checks that the server answers within the ping timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx, s.pingTimeout)
	defer cancel()
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("cannot reach clickhouse: %w", err)
	}
	return nil
}

// writeCtx bounds one write by the insert timeout. The driver applies a
// context deadline to the socket and closes the connection when the
// context ends, so a frozen server fails the write instead of holding it
// for read_timeout.
func (s *Store) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return withTimeout(ctx, s.insertTimeout)
}

// withTimeout is context.WithTimeout, except that 0 means none.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// table returns the fully qualified name of one of our tables. name is
// always a constant of this package, never user input.
func (s *Store) table(name string) string { return "`" + s.db + "`.`" + name + "`" }

// Conn is the underlying clickhouse-go connection, for packages that run
// their own statements against the same database (e.g. the incident store).
func (s *Store) Conn() driver.Conn { return s.conn }
