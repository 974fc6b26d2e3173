package clickhouse

import (
	"context"
	"errors"
	"fmt"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/internal/outcome"
)

// results holds the outcome of each record of a Write; the slice is
// made on the first failure, so a clean batch costs nothing.
type results struct {
	n    int
	errs []error
}

func (r *results) set(i int, err error) {
	if r.errs == nil {
		if err == nil {
			return
		}
		r.errs = make([]error, r.n)
	}
	r.errs[i] = err
}

func (r *results) get(i int) error {
	if r.errs == nil {
		return nil
	}
	return r.errs[i]
}

// err is what Write returns: nil, or the failures (see outcome.Result).
func (r *results) err() error {
	if r.errs == nil {
		return nil
	}
	return outcome.Result(r.errs)
}

// bisectBudget bounds the inserts one Write spends splitting a rejected
// batch; rows still unresolved then are retried (with the runner's
// backoff), and their good halves are in by then, so retries progress.
const bisectBudget = 128

// Write inserts batch: one insert per table (usually one), its rows
// converted to the column types first. Rows that do not convert fail
// alone and permanently; the others go in. A server outage fails the
// rows retryably.
func (s *Sink) Write(ctx context.Context, batch []sinks.Record) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	errs := &results{n: len(batch)}
	if len(batch) == 0 {
		return nil
	}
	// Group by table and rule mapping; nearly always every record goes
	// to the same.
	first, groups := groupRecords(batch, s.ruleSet())
	if groups == nil {
		s.writeTable(ctx, first.topic, first.m, batch, nil, errs, true)
		return errs.err()
	}
	for _, g := range groups {
		s.writeTable(ctx, g.topic, g.m, batch, g.idx, errs, true)
	}
	return errs.err()
}

// writeTable inserts the records idx of batch (nil: all) into the table
// ref names ("" for the configured one), with the rule mapping m (nil:
// the sink's), and sets errs for those that failed. refresh allows one
// re-read of the table's definition when the server says it changed.
func (s *Sink) writeTable(ctx context.Context, ref string, m *RuleColumns, batch []sinks.Record, idx []int, errs *results, refresh bool) {
	fail := func(err error) {
		if idx == nil {
			for i := range batch {
				errs.set(i, err)
			}
		}
		for _, i := range idx {
			errs.set(i, err)
		}
	}
	configured := ref == ""
	if configured {
		ref = s.cfg.Table
	}
	db, name, err := splitTable(s.cfg.Database, ref)
	if err != nil {
		fail(sinks.Permanent(fmt.Errorf("record topic: %w", err)))
		return
	}
	t, err := s.table(ctx, db, name, configured, m)
	if err != nil {
		var ce *ConfigError
		var nt *errNoTable
		if errors.As(err, &ce) || errors.As(err, &nt) {
			err = sinks.Permanent(err)
		}
		fail(err)
		return
	}
	n := len(idx)
	if idx == nil {
		n = len(batch)
	}
	ictx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	var pre chan prepared
	if n >= parallelMin {
		// Start the insert (a round trip: the server parses it and
		// answers with the table's header) while the rows convert.
		pre = make(chan prepared, 1)
		go func() {
			b, err := s.conn.PrepareBatch(ictx, t.insert)
			pre <- prepared{b, err}
		}()
	}
	enc := t.encode(batch, idx, errs)
	defer enc.release()
	rows := enc.rows // batch index of each converted row
	if pre != nil {
		p := <-pre
		if len(rows) == 0 {
			if p.b != nil {
				p.b.Abort()
			}
			return
		}
		err = s.fill(ictx, t, p.b, p.err, enc, 0, len(rows))
	} else {
		if len(rows) == 0 {
			return
		}
		err = s.fill(ictx, t, nil, nil, enc, 0, len(rows))
	}
	switch {
	case err == nil:
	case isSchemaChange(err) && refresh:
		// The table was dropped or altered since it was described:
		// describe it again (recreating it when allowed) and redo the
		// batch once with the new plan.
		s.log.Warn("table changed; reading its definition again", "table", t.String(), "error", err)
		s.forget(t)
		s.writeTable(ctx, refOf(configured, t), m, batch, idx, errs, false)
	case isSchemaChange(err):
		fail(sinks.Permanent(err))
	case isDataError(err):
		s.log.Warn("server rejected a batch; splitting it to find the bad rows", "table", t.String(), "rows", len(rows), "error", err)
		pending := fmt.Errorf("not inserted: %w", err)
		for _, i := range rows {
			errs.set(i, pending)
		}
		budget := bisectBudget
		if berr := s.bisect(ctx, t, enc, rows, 0, len(rows), err, errs, &budget); berr != nil {
			err = berr
		}
		for _, i := range rows {
			if errs.get(i) == pending {
				errs.set(i, err)
			}
		}
	default:
		for _, i := range rows {
			errs.set(i, err)
		}
	}
}

func refOf(configured bool, t *table) string {
	if configured {
		return ""
	}
	return t.String()
}

// bisect inserts rows [lo, hi) of enc, which the server rejected as a whole
// for a data reason (cause), in halves down to the single rows it
// rejects; those fail permanently. It returns the error that stopped it
// early (an outage); rows not yet settled keep their pending error.
func (s *Sink) bisect(ctx context.Context, t *table, enc *encoded, rows []int, lo, hi int, cause error, errs *results, budget *int) error {
	if hi-lo == 1 {
		errs.set(rows[lo], sinks.Permanent(fmt.Errorf("server rejected the row: %w", cause)))
		return nil
	}
	mid := lo + (hi-lo)/2
	for _, r := range [][2]int{{lo, mid}, {mid, hi}} {
		if *budget <= 0 {
			return fmt.Errorf("inserting into %s: still splitting a rejected batch after %d inserts: %w", t, bisectBudget, cause)
		}
		*budget--
		err := s.send(ctx, t, enc, r[0], r[1])
		switch {
		case err == nil:
			for _, i := range rows[r[0]:r[1]] {
				errs.set(i, nil)
			}
		case isDataError(err):
			if err := s.bisect(ctx, t, enc, rows, r[0], r[1], err, errs, budget); err != nil {
				return err
			}
		default:
			return err
		}
	}
	return nil
}

// insertError is a failed insert, with the stage it failed at: the
// server checks the statement and the table before the data is sent.
type insertError struct {
	table string
	stage string // prepare, append or send
	err   error
}

func (e *insertError) Error() string {
	return fmt.Sprintf("inserting into %s (%s): %v", e.table, e.stage, e.err)
}

func (e *insertError) Unwrap() error { return e.err }

// send inserts rows [lo, hi) of enc as one insert, bounded by WriteTimeout:
// a server that stops answering fails it (the driver closes the
// connection when the context ends).
func (s *Sink) send(ctx context.Context, t *table, enc *encoded, lo, hi int) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	return s.fill(ctx, t, nil, nil, enc, lo, hi)
}

// prepared is an insert started ahead (PrepareBatch's results).
type prepared struct {
	b   driver.Batch
	err error
}

// fill inserts rows [lo, hi) of enc with the insert b, prepared with
// prepErr, or a new one when b and prepErr are nil; ctx bounds it.
func (s *Sink) fill(ctx context.Context, t *table, b driver.Batch, prepErr error, enc *encoded, lo, hi int) error {
	err := prepErr
	if b == nil && err == nil {
		b, err = s.conn.PrepareBatch(ctx, t.insert)
	}
	if err != nil {
		return &insertError{table: t.String(), stage: "prepare", err: ctxErr(ctx, err)}
	}
	for i := range t.cols {
		if err := enc.slices(i, lo, hi, b.Column(i).Append); err != nil {
			b.Abort()
			return &insertError{table: t.String(), stage: "append", err: fmt.Errorf("column %s: %w", t.cols[i].name, err)}
		}
	}
	if err := b.Send(); err != nil {
		return &insertError{table: t.String(), stage: "send", err: ctxErr(ctx, err)}
	}
	return nil
}

// ctxErr prefers the context's error, which says why a connection was
// cut, to the network error the cut produced.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// Server error codes the sink tells apart (ClickHouse's ErrorCodes.cpp).
const (
	codeNoSuchColumnInTable = 16
	codeUnknownIdentifier   = 47
	codeNotFoundColumn      = 10
	codeUnknownTable        = 60
	codeUnknownDatabase     = 81
)

// transientCodes are server errors that say nothing about the data: the
// server is overloaded, read-only, short of memory or replicas, or the
// client is not allowed in. Retrying later can succeed.
var transientCodes = map[int32]bool{
	3: true, 32: true, 33: true, 101: true, // connection-level: unexpected end, cannot read all data, unexpected packet
	159: true, 160: true, 164: true, 202: true, 203: true, 209: true, 210: true, // timeouts, read-only, too many queries, network
	173: true, 241: true, 243: true, // memory, disk space
	192: true, 193: true, 194: true, 497: true, 516: true, // users, passwords, access
	225: true, 236: true, 242: true, 252: true, 285: true, 286: true, 319: true, // keeper, aborted, table read-only, too many parts, quorum
	394: true, 425: true, 999: true, // cancelled, system error, keeper
}

func serverCode(err error) (int32, bool) {
	var ex *ch.Exception
	if errors.As(err, &ex) {
		return ex.Code, true
	}
	return 0, false
}

func isNoTable(err error) bool {
	code, ok := serverCode(err)
	return ok && (code == codeUnknownTable || code == codeUnknownDatabase)
}

// isSchemaChange reports an insert that failed because the table is not
// what the plan was built from.
func isSchemaChange(err error) bool {
	var ie *insertError
	if errors.As(err, &ie) && ie.stage == "append" {
		return true // a column's type changed
	}
	code, ok := serverCode(err)
	if !ok {
		return false
	}
	switch code {
	case codeUnknownTable, codeUnknownDatabase, codeNoSuchColumnInTable, codeNotFoundColumn, codeUnknownIdentifier:
		return true
	}
	return false
}

// isDataError reports a server's rejection of the data sent: an
// exception after the data went out that is neither transient nor a
// schema change (a constraint, a throwIf in a MATERIALIZED column, a
// value the server cannot store). Splitting the batch finds the rows.
func isDataError(err error) bool {
	var ie *insertError
	if !errors.As(err, &ie) || ie.stage != "send" {
		return false
	}
	code, ok := serverCode(err)
	return ok && !transientCodes[code] && !isSchemaChange(err)
}
