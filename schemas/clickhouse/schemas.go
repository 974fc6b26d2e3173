// Package clickhouse holds the ClickHouse DDL shipped with Sluice: the
// manufacturing telemetry tables (telemetry_wide, metrics) written for
// current ClickHouse releases, and in compat/ variants for servers before
// 20.1 (no DateTime64, codecs or TTL), which the test server needs. The
// files run as they are with clickhouse-client; the ClickHouse sink's
// create_table uses them through DDL and Retarget.
package clickhouse

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
)

//go:embed *.sql compat/*.sql
var files embed.FS

// Names lists the shipped schemas.
func Names() []string {
	entries, _ := fs.Glob(files, "*.sql")
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = strings.TrimSuffix(e, ".sql")
	}
	slices.Sort(names)
	return names
}

// Compat reports whether a server of this version needs the compat/
// variants: releases before 20.1 lack DateTime64, and before 19.6 TTL.
func Compat(major int) bool { return major < 20 }

// DDL returns a CREATE TABLE statement: a shipped schema by name (the
// compat variant for old servers), or the contents of a .sql file when
// ref is a path (it contains a '/' or ends in .sql).
func DDL(ref string, major int) (string, error) {
	if strings.Contains(ref, "/") || strings.HasSuffix(ref, ".sql") {
		data, err := os.ReadFile(ref)
		if err != nil {
			return "", fmt.Errorf("reading ddl file: %w", err)
		}
		return string(data), nil
	}
	if !slices.Contains(Names(), ref) {
		return "", fmt.Errorf("unknown schema %q (shipped: %s; or give a .sql file)", ref, strings.Join(Names(), ", "))
	}
	name := ref + ".sql"
	if Compat(major) {
		name = "compat/" + name
	}
	data, err := files.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("reading schema %s: %w", ref, err)
	}
	return string(data), nil
}

// createTable matches the head of a CREATE TABLE statement up to the
// table's name, after any leading comments.
var createTable = regexp.MustCompile("(?is)^((?:\\s*--[^\\n]*\\n)*\\s*)CREATE\\s+TABLE\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?(?:`[^`]+`|\"[^\"]+\"|[\\w.]+)")

// Retarget rewrites ddl, a single CREATE TABLE statement, to create
// database.table if it does not exist, and strips its final semicolon
// (the native protocol takes one statement without it).
func Retarget(ddl, database, table string) (string, error) {
	loc := createTable.FindStringSubmatchIndex(ddl)
	if loc == nil {
		return "", fmt.Errorf("ddl does not start with CREATE TABLE")
	}
	out := ddl[:loc[3]] + "CREATE TABLE IF NOT EXISTS " + database + "." + table + ddl[loc[1]:]
	out = strings.TrimSpace(out)
	out = strings.TrimSuffix(out, ";")
	if strings.Contains(stripComments(out), ";") {
		return "", fmt.Errorf("ddl holds more than one statement")
	}
	return out, nil
}

// stripComments removes -- comments and quoted text, for the statement
// count check.
func stripComments(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '\'':
			for i++; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
