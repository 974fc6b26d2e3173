// Package clickhouse is the ClickHouse sink: it inserts each batch the
// runner hands it as one typed, columnar insert over the native protocol
// (clickhouse-go/v2, LZ4). Each record's JSON object is read once, field
// by field, straight into per-column slices; no value is formatted as
// SQL text. A row whose value does not fit its column is dead-lettered
// alone with the column and the reason, and the rest of its batch goes
// in; a batch the server rejects is split to find the bad rows. See
// README.md for the configuration and DESIGN.md for the guarantees.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/internal/secret"
)

var (
	_ sinks.Sink      = (*Sink)(nil)
	_ sinks.Connector = (*Sink)(nil)
)

// errClosed is returned by Write after Close.
var errClosed = errors.New("clickhouse sink is closed")

// Sink inserts records into ClickHouse tables. It is safe for concurrent
// use: concurrent writes use separate connections.
type Sink struct {
	cfg  Config
	log  *slog.Logger
	conn driver.Conn

	mu      sync.Mutex
	tables  map[string]*table        // by table.key; plans are built on first use
	schemas map[string][]tableColumn // by "db.table": DESCRIBE TABLE's answer

	rules rulePlans // the rules' column mappings (SetRuleColumns)

	closeOnce sync.Once
	closed    atomic.Bool
}

// New validates cfg and builds a sink. It reads the TLS files named by
// cfg but opens no connection.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	cfg = cfg.withDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("configuring clickhouse sink: %w", errors.Join(errs...))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pass, err := secret.Expand(cfg.Password, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("configuring clickhouse sink password: %w", err)
	}
	opts := &ch.Options{
		Protocol:         ch.Native,
		Addr:             cfg.Addresses,
		Auth:             ch.Auth{Database: cfg.Database, Username: cfg.Username, Password: pass},
		DialTimeout:      cfg.DialTimeout,
		ReadTimeout:      cfg.WriteTimeout,
		MaxOpenConns:     cfg.MaxOpenConns,
		MaxIdleConns:     cfg.MaxOpenConns,
		ConnMaxLifetime:  time.Hour,
		ConnOpenStrategy: ch.ConnOpenRoundRobin,
		ClientInfo:       ch.ClientInfo{Products: []struct{ Name, Version string }{{Name: "sluice", Version: "1"}}},
	}
	switch cfg.Compression {
	case "lz4":
		opts.Compression = &ch.Compression{Method: ch.CompressionLZ4}
	case "zstd":
		opts.Compression = &ch.Compression{Method: ch.CompressionZSTD}
	}
	if cfg.TLS.Enabled {
		tc, err := cfg.TLS.Files().Load()
		if err != nil {
			return nil, fmt.Errorf("configuring clickhouse sink tls: %w", err)
		}
		opts.TLS = tc
	}
	conn, err := ch.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("configuring clickhouse sink: %w", err)
	}
	return &Sink{cfg: cfg, log: log, conn: conn, tables: map[string]*table{}, schemas: map[string][]tableColumn{}}, nil
}

// BatchOverride returns the batch bounds the runner uses for this sink
// instead of the ingest section's.
func (s *Sink) BatchOverride() (maxRecords, maxBytes int, linger time.Duration) {
	return s.cfg.Batch.MaxRecords, s.cfg.Batch.MaxBytes, s.cfg.Batch.Linger
}

// Connect checks that the server answers and that the configured table
// exists (creating it with create_table) and fits the column mapping. A
// mapping that does not fit is a *ConfigError; anything else is an
// outage to retry.
func (s *Sink) Connect(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("connecting to clickhouse %v: %w", s.cfg.Addresses, err)
	}
	db, name, _ := splitTable(s.cfg.Database, s.cfg.Table)
	_, err := s.table(ctx, db, name, true, nil)
	var nt *errNoTable
	if errors.As(err, &nt) {
		return &ConfigError{Table: nt.table, Problems: []string{"table: does not exist (create it, or set create_table: true with a ddl)"}}
	}
	var ce *ConfigError
	if err != nil && !errors.As(err, &ce) {
		return err
	}
	var rerr error
	if rs := s.ruleSet(); rs != nil {
		var all []RuleColumns
		for _, ms := range rs.byRule {
			for _, m := range ms {
				all = append(all, *m)
			}
		}
		slices.SortFunc(all, func(a, b RuleColumns) int { return strings.Compare(a.Rule+"\x00"+a.Target, b.Rule+"\x00"+b.Target) })
		rerr = s.CheckRuleColumns(ctx, all)
	}
	return errors.Join(err, rerr)
}

// Close releases the connections. It is safe to call twice.
func (s *Sink) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		err = s.conn.Close()
	})
	return err
}

// errNoTable reports a table that does not exist.
type errNoTable struct{ table string }

func (e *errNoTable) Error() string {
	return fmt.Sprintf("table %s does not exist", e.table)
}

// table returns the insert plan of db.name, describing the table (and
// creating it when allowed) on first use. create says whether a missing
// table may be created: only the configured one can.
// m, when set, is the rule mapping the plan is for; nil is the sink's
// own mapping.
func (s *Sink) table(ctx context.Context, db, name string, create bool, m *RuleColumns) (*table, error) {
	key := db + "." + name
	if m != nil {
		key += "\x00" + m.signature()
	}
	s.mu.Lock()
	t := s.tables[key]
	cols, described := s.schemas[db+"."+name]
	s.mu.Unlock()
	if t != nil {
		return t, nil
	}
	if !described {
		var err error
		cols, err = s.describe(ctx, db, name)
		var missing *errNoTable
		if errors.As(err, &missing) && create && s.cfg.CreateTable {
			if err = s.createTable(ctx, db, name); err == nil {
				cols, err = s.describe(ctx, db, name)
			}
		}
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.schemas[db+"."+name] = cols
		s.mu.Unlock()
	}
	var err error
	if m != nil {
		t, err = planRule(db, name, cols, s.cfg.Columns, m)
	} else {
		t, err = plan(db, name, cols, s.cfg.Columns)
	}
	if err != nil {
		return nil, err
	}
	t.key = key
	s.mu.Lock()
	if prev := s.tables[key]; prev != nil {
		t = prev
	} else {
		s.tables[key] = t
	}
	s.mu.Unlock()
	return t, nil
}

// forget drops the plan of a table whose definition changed under us
// (dropped, altered), so the next write describes it again.
func (s *Sink) forget(t *table) {
	s.mu.Lock()
	if s.tables[t.key] == t {
		delete(s.tables, t.key)
	}
	delete(s.schemas, t.String())
	s.mu.Unlock()
}

// describe reads the table's columns with DESCRIBE TABLE, whose result
// has grown columns over ClickHouse releases: the first three (name,
// type, default kind) are what every release has.
func (s *Sink) describe(ctx context.Context, db, name string) ([]tableColumn, error) {
	rows, err := s.conn.Query(ctx, fmt.Sprintf("DESCRIBE TABLE %s.%s", db, name))
	if err != nil {
		if isNoTable(err) {
			return nil, &errNoTable{table: db + "." + name}
		}
		return nil, fmt.Errorf("describing table %s.%s: %w", db, name, err)
	}
	defer rows.Close()
	n := len(rows.Columns())
	if n < 3 {
		return nil, fmt.Errorf("describing table %s.%s: %d result columns, want at least 3", db, name, n)
	}
	var cols []tableColumn
	dest := make([]any, n)
	strs := make([]string, n)
	for i := range dest {
		dest[i] = &strs[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("describing table %s.%s: %w", db, name, err)
		}
		cols = append(cols, tableColumn{Name: strs[0], Type: strs[1], DefaultKind: strs[2]})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describing table %s.%s: %w", db, name, err)
	}
	return cols, nil
}
