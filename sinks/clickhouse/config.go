package clickhouse

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/sinks/internal/secret"
	"github.com/sluicehq/sluice/sinks/internal/tlsfiles"
)

// Config configures a ClickHouse sink. A zero field means its default, so
// a Config decoded over a zero value (as a map entry is) is complete.
type Config struct {
	// Addresses lists the servers' native protocol addresses as host:port
	// (9000, or 9440 with TLS). Connections are spread over them and move
	// on when one is down. Required. Default: none.
	Addresses []string `koanf:"addresses"`
	// Database holds the table. Default: default.
	Database string `koanf:"database"`
	// Table receives the rows of records whose rule renders no topic; a
	// rule's topic, when set, names the table instead (as table or
	// database.table). Required. Default: "".
	Table string `koanf:"table"`
	// Username is the ClickHouse user. Default: default.
	Username string `koanf:"username"`
	// Password is the user's password; ${NAME} is replaced by environment
	// variable NAME when the sink is built. Default: "".
	Password string `koanf:"password"`
	// Columns maps a table column to where its value comes from: a field
	// of the record's JSON object ("temp", or "reading.temp" for a nested
	// one), a record property ($topic, $client_id, $username,
	// $received_at, $rule, $key, $value, $qos, $retain, $content_type,
	// $record_topic) or "-" to leave the column to its DEFAULT. Columns
	// not listed take the JSON field of their own name, except columns
	// with a DEFAULT expression, which ClickHouse fills. Default: none.
	Columns map[string]string `koanf:"columns"`
	// CreateTable creates the table from DDL when it does not exist.
	// Default: false.
	CreateTable bool `koanf:"create_table"`
	// DDL is the CREATE TABLE statement used by create_table: the name of
	// a schema shipped in schemas/clickhouse (telemetry_wide, metrics) or
	// the path of a .sql file. The statement's table name is replaced by
	// the sink's database and table. Default: "".
	DDL string `koanf:"ddl"`
	// Compression compresses the native protocol's blocks: lz4, zstd or
	// none. Default: lz4.
	Compression string `koanf:"compression"`
	// DialTimeout bounds opening a connection, TLS and handshake
	// included. Default: 5s.
	DialTimeout time.Duration `koanf:"dial_timeout"`
	// WriteTimeout bounds one insert, from taking a connection to the
	// server's acknowledgement; a server that stops answering fails the
	// write after it (and the batch is retried). Default: 30s.
	WriteTimeout time.Duration `koanf:"write_timeout"`
	// MaxOpenConns bounds the connections open at once. Default: 4.
	MaxOpenConns int `koanf:"max_open_conns"`
	// Batch bounds the batches the runner hands this sink, replacing the
	// ingest section's batch bounds: ClickHouse wants few, large inserts.
	Batch BatchConfig `koanf:"batch"`
	// TLS configures encrypted connections.
	TLS TLSConfig `koanf:"tls"`
}

// BatchConfig bounds the batches written to ClickHouse.
type BatchConfig struct {
	// MaxRecords is the most rows in one insert. Default: 50000.
	MaxRecords int `koanf:"max_records"`
	// MaxBytes is the most record bytes in one insert. Default: 16 MiB.
	MaxBytes int `koanf:"max_bytes"`
	// Linger is how long a partial batch waits for more records: under
	// light traffic a row reaches the table at most this late, and a
	// lane makes at most one insert per linger. Default: 500ms.
	Linger time.Duration `koanf:"linger"`
}

// TLSConfig configures TLS to the servers.
type TLSConfig = tlsfiles.Config

// DefaultConfig returns the defaults (Addresses and Table still have to
// be set).
func DefaultConfig() Config {
	return Config{
		Database:     "default",
		Username:     "default",
		Compression:  "lz4",
		DialTimeout:  5 * time.Second,
		WriteTimeout: 30 * time.Second,
		MaxOpenConns: 4,
		Batch:        BatchConfig{MaxRecords: 50000, MaxBytes: 16 << 20, Linger: 500 * time.Millisecond},
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	set(&c.Database, d.Database)
	set(&c.Username, d.Username)
	set(&c.Compression, d.Compression)
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = d.MaxOpenConns
	}
	if c.Batch.MaxRecords == 0 {
		c.Batch.MaxRecords = d.Batch.MaxRecords
	}
	if c.Batch.MaxBytes == 0 {
		c.Batch.MaxBytes = d.Batch.MaxBytes
	}
	if c.Batch.Linger == 0 {
		c.Batch.Linger = d.Batch.Linger
	}
	return c
}

// Validate reports every problem in c, each with its key path relative
// to the sink's section. It checks what can be checked without a server;
// Connect checks the columns against the table.
func (c Config) Validate() []error {
	c = c.withDefaults()
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if len(c.Addresses) == 0 {
		bad("addresses", "at least one host:port is required")
	}
	for i, a := range c.Addresses {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			bad(fmt.Sprintf("addresses[%d]", i), "want host:port, not %q", a)
		}
	}
	if !validIdent(c.Database) {
		bad("database", "invalid database name %q", c.Database)
	}
	if c.Table == "" {
		bad("table", "is required")
	} else if _, _, err := splitTable(c.Database, c.Table); err != nil {
		bad("table", "%v", err)
	}
	if err := secret.Check(c.Password); err != nil {
		bad("password", "%v", err)
	}
	for _, col := range slices.Sorted(maps.Keys(c.Columns)) {
		if _, err := parseSource(c.Columns[col]); err != nil {
			bad("columns."+col, "%v", err)
		}
	}
	if c.CreateTable && c.DDL == "" {
		bad("ddl", "is required with create_table (a shipped schema name or a .sql file)")
	}
	if !slices.Contains([]string{"lz4", "zstd", "none"}, c.Compression) {
		bad("compression", "must be lz4, zstd or none, not %q", c.Compression)
	}
	if c.DialTimeout < 0 {
		bad("dial_timeout", "must not be negative")
	}
	if c.WriteTimeout < 0 {
		bad("write_timeout", "must not be negative")
	}
	if c.MaxOpenConns < 1 {
		bad("max_open_conns", "must be at least 1")
	}
	if c.Batch.MaxRecords < 1 {
		bad("batch.max_records", "must be at least 1")
	}
	if c.Batch.MaxBytes < 1 {
		bad("batch.max_bytes", "must be at least 1")
	}
	if c.Batch.Linger < 0 {
		bad("batch.linger", "must not be negative")
	}
	errs = append(errs, c.TLS.Files().Validate("tls.")...)
	return errs
}

// splitTable resolves a table reference, "table" or "database.table",
// against the default database.
func splitTable(defaultDB, ref string) (db, table string, err error) {
	db, table = defaultDB, ref
	if d, t, ok := strings.Cut(ref, "."); ok {
		db, table = d, t
	}
	if !validIdent(db) || !validIdent(table) {
		return "", "", fmt.Errorf("invalid table name %q (want table or database.table of letters, digits and '_')", ref)
	}
	return db, table, nil
}

// validIdent reports whether s is a plain identifier, which needs no
// quoting in SQL: letters, digits and '_', not starting with a digit.
func validIdent(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
