package clickhouse

import (
	"context"
	"fmt"

	schemas "github.com/sluicehq/sluice/schemas/clickhouse"
)

// createTable creates db.name from the configured DDL: a shipped schema
// (its compat variant on servers before 20.1) or a .sql file.
func (s *Sink) createTable(ctx context.Context, db, name string) error {
	v, err := s.conn.ServerVersion()
	if err != nil {
		return fmt.Errorf("creating table %s.%s: reading the server version: %w", db, name, err)
	}
	ddl, err := schemas.DDL(s.cfg.DDL, int(v.Version.Major))
	if err != nil {
		return &ConfigError{Table: db + "." + name, Problems: []string{"ddl: " + err.Error()}}
	}
	stmt, err := schemas.Retarget(ddl, db, name)
	if err != nil {
		return &ConfigError{Table: db + "." + name, Problems: []string{"ddl " + s.cfg.DDL + ": " + err.Error()}}
	}
	if err := s.conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("creating table %s.%s from %s: %w", db, name, s.cfg.DDL, err)
	}
	s.log.Info("created table", "table", db+"."+name, "ddl", s.cfg.DDL, "server_version", v.String())
	return nil
}
