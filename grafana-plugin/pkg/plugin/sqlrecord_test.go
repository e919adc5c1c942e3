package plugin

// A copy of internal/store/sqlrecord_test.go (the plugin is its own module
// and never imports internal/): keep the two in step.
//
// A driver.Conn that records every statement the code under test runs on
// ClickHouse 18.16 — its call site, its SQL and bound arguments, the rows
// it scanned, the rows it inserted — so that scripts/chdb_queries.py can
// run the same statements in the same order on a current ClickHouse (chdb)
// and compare. The plugin backend (its own Go module) keeps a copy of this
// file in grafana-plugin/pkg/plugin/sqlrecord_test.go; the two write the
// same corpus format:
//
//	{"db": name, "entries": [entry…], "cluster_ddl": [sql…]}
//	entry: {"kind": "exec"|"query"|"batch"|"restore"|"schema", "site": "file.go:line",
//	        "func": "pkg.(*T).Method", "sql": "…", "args": [arg…],
//	        "rows": [[value…]…], "compare": bool, "columns": [name…], "table": name}
//	arg:   {"t": "s"|"n"|"a"|"time", "v": …, "unix": n, "loc": "UTC"|"Local"|zone}
//	value: string, number, "YYYY-MM-DD hh:mm:ss" (UTC) or a list of values

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

type corpusArg struct {
	T    string `json:"t"`
	V    any    `json:"v"`
	Unix int64  `json:"unix,omitempty"`
	Loc  string `json:"loc,omitempty"`
}

type corpusEntry struct {
	Kind    string      `json:"kind"`
	Site    string      `json:"site,omitempty"`
	Func    string      `json:"func,omitempty"`
	SQL     string      `json:"sql,omitempty"`
	Args    []corpusArg `json:"args,omitempty"`
	Rows    [][]any     `json:"rows"`
	Compare bool        `json:"compare"`
	Columns []string    `json:"columns,omitempty"`
	Table   string      `json:"table,omitempty"`
}

type corpus struct {
	DB string `json:"db"`
	// Pointers: a query's rows are added to its entry while it is read,
	// and other statements (of another goroutine) may be recorded
	// meanwhile; growing a []corpusEntry would leave those rows in a copy.
	Entries    []*corpusEntry `json:"entries"`
	ClusterDDL []string       `json:"cluster_ddl,omitempty"`
}

type recorder struct {
	driver.Conn
	mu      sync.Mutex
	c       corpus
	compare bool  // whether results of queries recorded from now on are compared
	err     error // the first argument or value the corpus cannot carry
}

func newRecorder(conn driver.Conn, db string) *recorder {
	return &recorder{Conn: conn, c: corpus{DB: db}}
}

func (r *recorder) add(e corpusEntry) *corpusEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &e
	r.c.Entries = append(r.c.Entries, p)
	return p
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

func (r *recorder) entry(kind, sql string, args []any) corpusEntry {
	s, fn := site()
	e := corpusEntry{Kind: kind, Site: s, Func: fn, SQL: sql, Rows: [][]any{}}
	for _, a := range args {
		ca, err := encodeArg(a)
		if err != nil {
			r.fail(fmt.Errorf("%s: %w", s, err))
		}
		e.Args = append(e.Args, ca)
	}
	return e
}

// site is the code that called the recorder method that called entry.
func site() (string, string) {
	pc, file, line, _ := runtime.Caller(3)
	fn := runtime.FuncForPC(pc).Name()
	return filepath.Base(filepath.Dir(file)) + "/" + filepath.Base(file) + ":" + fmt.Sprint(line), fn[strings.LastIndex(fn, "/")+1:]
}

func (r *recorder) Exec(ctx context.Context, query string, args ...any) error {
	e := r.entry("exec", query, args)
	err := r.Conn.Exec(ctx, query, args...)
	if err == nil {
		r.add(e)
	}
	return err
}

func (r *recorder) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	e := r.entry("query", query, args)
	e.Compare = r.compare && !strings.Contains(query, "now()")
	rows, err := r.Conn.Query(ctx, query, args...)
	if err != nil {
		return rows, err
	}
	return &recRows{Rows: rows, r: r, e: r.add(e)}, nil
}

func (r *recorder) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	e := r.entry("query", query, args)
	e.Compare = r.compare && !strings.Contains(query, "now()")
	return &recRow{Row: r.Conn.QueryRow(ctx, query, args...), r: r, e: e}
}

func (r *recorder) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	e := r.entry("batch", query, nil)
	m := regexp.MustCompile(`(?s)^INSERT INTO\s+(\S+)\s*\((.*)\)\s*$`).FindStringSubmatch(query)
	if m == nil {
		r.fail(fmt.Errorf("%s: batch %q does not list its columns", e.Site, query))
		return r.Conn.PrepareBatch(ctx, query, opts...)
	}
	e.Table = m[1]
	for _, c := range strings.Split(m[2], ",") {
		e.Columns = append(e.Columns, strings.TrimSpace(c))
	}
	b, err := r.Conn.PrepareBatch(ctx, query, opts...)
	if err != nil {
		return b, err
	}
	return &recBatch{Batch: b, r: r, e: e, cols: make([][]any, len(e.Columns))}, nil
}

func (r *recorder) snapshot(e *corpusEntry, dest []any) {
	row := make([]any, len(dest))
	for i, d := range dest {
		v, err := normValue(reflect.ValueOf(d).Elem().Interface())
		if err != nil {
			r.fail(fmt.Errorf("%s: column %d: %w", e.Site, i, err))
		}
		row[i] = v
	}
	r.mu.Lock()
	e.Rows = append(e.Rows, row)
	r.mu.Unlock()
}

type recRows struct {
	driver.Rows
	r *recorder
	e *corpusEntry
}

func (x *recRows) Scan(dest ...any) error {
	if err := x.Rows.Scan(dest...); err != nil {
		return err
	}
	x.r.snapshot(x.e, dest)
	return nil
}

type recRow struct {
	driver.Row
	r *recorder
	e corpusEntry
}

func (x *recRow) Scan(dest ...any) error {
	if err := x.Row.Scan(dest...); err != nil {
		return err
	}
	e := x.r.add(x.e)
	x.r.snapshot(e, dest)
	return nil
}

type recBatch struct {
	driver.Batch
	r    *recorder
	e    corpusEntry
	rows [][]any
	cols [][]any // columnar appends
}

func (b *recBatch) Append(v ...any) error {
	if err := b.Batch.Append(v...); err != nil {
		return err
	}
	b.rows = append(b.rows, v)
	return nil
}

func (b *recBatch) Column(i int) driver.BatchColumn {
	return &recColumn{BatchColumn: b.Batch.Column(i), b: b, i: i}
}

func (b *recBatch) Send() error {
	if err := b.Batch.Send(); err != nil {
		return err
	}
	rows := b.rows
	if len(b.cols) > 0 && len(b.cols[0]) > 0 {
		for i := range b.cols[0] {
			row := make([]any, len(b.cols))
			for c := range b.cols {
				row[c] = b.cols[c][i]
			}
			rows = append(rows, row)
		}
	}
	for _, row := range rows {
		nr := make([]any, len(row))
		for i, v := range row {
			n, err := normValue(v)
			if err != nil {
				b.r.fail(fmt.Errorf("%s: %w", b.e.Site, err))
			}
			nr[i] = n
		}
		b.e.Rows = append(b.e.Rows, nr)
	}
	b.r.add(b.e)
	return nil
}

type recColumn struct {
	driver.BatchColumn
	b *recBatch
	i int
}

func (c *recColumn) Append(v any) error {
	if err := c.BatchColumn.Append(v); err != nil {
		return err
	}
	rv := reflect.ValueOf(v)
	for j := 0; j < rv.Len(); j++ {
		c.b.cols[c.i] = append(c.b.cols[c.i], rv.Index(j).Interface())
	}
	return nil
}

// normValue is a scanned or inserted Go value in the corpus' value form.
func normValue(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, fmt.Errorf("NULL values are not in the portable subset")
	case string:
		return x, nil
	case time.Time:
		return x.UTC().Format(time.DateTime), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rv.Uint(), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			n, err := normValue(rv.Index(i).Interface())
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, fmt.Errorf("nil pointer")
		}
		return normValue(rv.Elem().Interface())
	}
	return nil, fmt.Errorf("cannot carry a %T in the corpus", v)
}

// encodeArg describes a bound argument so that the Python side binds it as
// clickhouse-go does (bind.go: strings quoted, times as toDateTime(…),
// slices as arrays, numbers as they print).
func encodeArg(v any) (corpusArg, error) {
	switch x := v.(type) {
	case string:
		return corpusArg{T: "s", V: x}, nil
	case time.Time:
		return corpusArg{T: "time", V: x.Format(time.DateTime), Unix: x.Unix(), Loc: x.Location().String()}, nil
	case bool:
		if x {
			return corpusArg{T: "n", V: 1}, nil
		}
		return corpusArg{T: "n", V: 0}, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return corpusArg{T: "n", V: rv.Int()}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return corpusArg{T: "n", V: rv.Uint()}, nil
	case reflect.String:
		return corpusArg{T: "s", V: rv.String()}, nil
	case reflect.Slice, reflect.Array:
		var out []corpusArg
		for i := 0; i < rv.Len(); i++ {
			a, err := encodeArg(rv.Index(i).Interface())
			if err != nil {
				return a, err
			}
			out = append(out, a)
		}
		if out == nil {
			out = []corpusArg{}
		}
		return corpusArg{T: "a", V: out}, nil
	}
	return corpusArg{}, fmt.Errorf("cannot carry an argument of type %T in the corpus", v)
}

// write saves the corpus as dir/name.json.
func (r *recorder) write(dir, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := json.MarshalIndent(r.c, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644)
}

func reflectNew(t reflect.Type) any { return reflect.New(t).Interface() }
