package clickhouse

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/sluicehq/sluice/internal/chtest"
	"github.com/sluicehq/sluice/sinks"
)

// benchRows is the batch size of the benchmarks: the sink's default
// batch.max_records.
const benchRows = 50000

// benchTable is the benchmark's 6 typed columns.
const benchTable = `(
	ts DateTime, device String, metric LowCardinality(String),
	value Float64, seq UInt64, quality UInt8
) ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (metric, device, ts)`

// benchRecords returns n records as a rule's transform writes them.
func benchRecords(n int) []sinks.Record {
	metrics := []string{"temperature", "pressure", "vibration", "rpm"}
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	out := make([]sinks.Record, n)
	for i := range out {
		dev := fmt.Sprintf("press-%04d", i%500)
		ts := base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
		out[i] = sinks.Record{
			Rule: "bench", Key: []byte(dev),
			Value: fmt.Appendf(nil, `{"device":%q,"metric":%q,"quality":%d,"seq":%d,"ts":%q,"value":%g}`,
				dev, metrics[i%4], i%3, i, ts, benchValue(i)),
			Source: sinks.Source{Topic: "plant/" + dev, ClientID: dev, ReceivedAt: base},
		}
	}
	return out
}

// benchValue is a reading with two decimals, as sensors report them.
func benchValue(i int) float64 { return float64(2000+i%1000) / 100 }

// rawColumns is the same data as typed slices, for the driver alone.
type rawColumns struct {
	ts      []time.Time
	device  []string
	metric  []string
	value   []float64
	seq     []uint64
	quality []uint8
}

func benchColumns(n int) *rawColumns {
	metrics := []string{"temperature", "pressure", "vibration", "rpm"}
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	c := &rawColumns{}
	for i := 0; i < n; i++ {
		c.ts = append(c.ts, base.Add(time.Duration(i)*time.Millisecond))
		c.device = append(c.device, fmt.Sprintf("press-%04d", i%500))
		c.metric = append(c.metric, metrics[i%4])
		c.value = append(c.value, benchValue(i))
		c.seq = append(c.seq, uint64(i))
		c.quality = append(c.quality, uint8(i%3))
	}
	return c
}

// BenchmarkInsert compares the sink's Write of JSON records with the
// driver's batch insert of the same rows ready as Go values, into the
// same table of the same server: raw-columns appends whole typed columns
// (the driver's fastest path), raw-rows appends row by row (its batch
// API as documented). One writer and two concurrent writers (the
// runner's lanes); each op is one batch of 50,000 rows.
//
//	go test ./sinks/clickhouse -run '^$' -bench Insert -benchtime 20x
func BenchmarkInsert(b *testing.B) {
	srv, variants := insertVariants(b)
	for _, writers := range []int{1, 2} {
		for _, v := range variants {
			b.Run(fmt.Sprintf("%s/writers=%d", v.name, writers), func(b *testing.B) {
				b.ReportAllocs()
				srvCPU, cliCPU := srv.CPUTime(), processCPU()
				b.ResetTimer()
				if err := runWriters(b.N, writers, v.fn); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rows := float64(b.N * benchRows)
				b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
				// CPU per row, client and server: the machine is shared, so
				// wall-clock rates vary with the load; CPU time does less.
				b.ReportMetric(float64(processCPU()-cliCPU)/rows, "client-cpu-ns/row")
				b.ReportMetric(float64(srv.CPUTime()-srvCPU)/rows, "server-cpu-ns/row")
			})
		}
	}
}

// BenchmarkVersusRaw alternates rounds of the sink and of the raw driver
// (each round: one batch per writer, concurrently) and reports each
// one's rate over the same span of time, and the sink's share of each
// raw rate: on a shared machine the load changes from one benchmark to
// the next, but it changes for both alike here. It also reports each
// one's CPU per row, this process's (client) and the server's.
//
// With merges=on the server merges parts in the background as it would,
// and a merge's CPU lands on whichever variant runs meanwhile (the
// slower one gets more). With merges=off merges are stopped and the
// table emptied after every round (outside the timing), so each variant
// pays for its own inserts only: the server runs on the same two vCPUs
// here, where in a deployment it has its own.
//
//	go test ./sinks/clickhouse -run '^$' -bench VersusRaw -benchtime 40x
func BenchmarkVersusRaw(b *testing.B) {
	srv, table, variants := insertVariantsTable(b)
	for _, merges := range []bool{true, false} {
		if !merges {
			srv.Exec(b, "SYSTEM STOP MERGES")
			b.Cleanup(func() { srv.Exec(b, "SYSTEM START MERGES") })
		}
		for _, writers := range []int{1, 2} {
			b.Run(fmt.Sprintf("merges=%s/writers=%d", map[bool]string{true: "on", false: "off"}[merges], writers), func(b *testing.B) {
				versusRaw(b, srv, table, variants, writers, merges)
			})
		}
	}
}

func versusRaw(b *testing.B, srv *chtest.Server, table string, variants []variant, writers int, merges bool) {
	spent := make([]time.Duration, len(variants))
	cli := make([]time.Duration, len(variants))
	srvCPU := make([]time.Duration, len(variants))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Rotate the order, so the merges one variant's inserts
		// cause fall on each variant alike.
		for k := range variants {
			j := (i + k) % len(variants)
			start, c0, s0 := time.Now(), processCPU(), srv.CPUTime()
			if err := runWriters(writers, writers, variants[j].fn); err != nil {
				b.Fatal(err)
			}
			spent[j] += time.Since(start)
			cli[j] += processCPU() - c0
			srvCPU[j] += srv.CPUTime() - s0
		}
		if !merges {
			b.StopTimer()
			srv.Exec(b, "TRUNCATE TABLE "+table)
			b.StartTimer()
		}
	}
	rows := float64(b.N * writers * benchRows)
	rate := func(j int) float64 { return rows / spent[j].Seconds() }
	for j, v := range variants {
		b.ReportMetric(rate(j), v.name+"-rows/s")
		b.ReportMetric(float64(cli[j])/rows, v.name+"-client-ns/row")
		b.ReportMetric(float64(srvCPU[j])/rows, v.name+"-server-ns/row")
	}
	b.ReportMetric(100*rate(2)/rate(0), "%-of-raw-columns")
	b.ReportMetric(100*rate(2)/rate(1), "%-of-raw-rows")
}

type variant struct {
	name string
	fn   func(context.Context) error
}

// insertVariants starts a table on the shared server and returns the
// three ways of inserting benchRows rows into it: raw-columns,
// raw-rows, sink (in that order).
func insertVariants(b testing.TB) (*chtest.Server, []variant) {
	srv, _, variants := insertVariantsTable(b)
	return srv, variants
}

// insertVariantsTable is insertVariants, also naming the table.
func insertVariantsTable(b testing.TB) (*chtest.Server, string, []variant) {
	srv := server(b)
	db, name := makeTable(b, srv, benchTable)
	s := newSink(b, srv, Config{Database: db, Table: name})
	conn, err := ch.Open(&ch.Options{Addr: []string{srv.Addr()}, Compression: &ch.Compression{Method: ch.CompressionLZ4}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	records := benchRecords(benchRows)
	cols := benchColumns(benchRows)
	insert := fmt.Sprintf("INSERT INTO %s.%s (ts, device, metric, value, seq, quality)", db, name)
	raw := func(ctx context.Context) error {
		batch, err := conn.PrepareBatch(ctx, insert)
		if err != nil {
			return err
		}
		for i, v := range []any{cols.ts, cols.device, cols.metric, cols.value, cols.seq, cols.quality} {
			if err := batch.Column(i).Append(v); err != nil {
				return err
			}
		}
		return batch.Send()
	}
	// rawRows is the driver's row-by-row batch API (Append per row).
	rawRows := func(ctx context.Context) error {
		batch, err := conn.PrepareBatch(ctx, insert)
		if err != nil {
			return err
		}
		for i := range cols.ts {
			if err := batch.Append(cols.ts[i], cols.device[i], cols.metric[i], cols.value[i], cols.seq[i], cols.quality[i]); err != nil {
				return err
			}
		}
		return batch.Send()
	}
	sink := func(ctx context.Context) error { return s.Write(ctx, records) }
	return srv, db + "." + name, []variant{{"raw-columns", raw}, {"raw-rows", rawRows}, {"sink", sink}}
}

// runWriters runs fn n times over the given number of goroutines.
func runWriters(n, writers int, fn func(context.Context) error) error {
	ctx := context.Background()
	next := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		next <- struct{}{}
	}
	close(next)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if err := fn(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// processCPU is this process's CPU time, user plus system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEncode measures the sink's conversion of JSON records into
// typed columns alone, without the server.
func BenchmarkEncode(b *testing.B) {
	cols := []tableColumn{{"ts", "DateTime", ""}, {"device", "String", ""}, {"metric", "LowCardinality(String)", ""},
		{"value", "Float64", ""}, {"seq", "UInt64", ""}, {"quality", "UInt8", ""}}
	t, err := plan("db", "t", cols, nil)
	if err != nil {
		b.Fatal(err)
	}
	records := benchRecords(benchRows)
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := t.encoder()
		for j := range records {
			if err := e.add(&records[j]); err != nil {
				b.Fatal(err)
			}
		}
		e.release()
	}
	b.ReportMetric(float64(b.N*benchRows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N*benchRows), "cpu-ns/row")
}

// BenchmarkRow measures one record's scan and conversion, the sink's
// per-row cost, on a hot cache.
func BenchmarkRow(b *testing.B) {
	cols := []tableColumn{{"ts", "DateTime", ""}, {"device", "String", ""}, {"metric", "LowCardinality(String)", ""},
		{"value", "Float64", ""}, {"seq", "UInt64", ""}, {"quality", "UInt8", ""}}
	t, err := plan("db", "t", cols, nil)
	if err != nil {
		b.Fatal(err)
	}
	records := benchRecords(1000)
	e := t.encoder()
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	defer func() { b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op") }()
	for i := 0; i < b.N; i++ {
		if i%1000 == 0 {
			e.release()
			e = t.encoder()
		}
		if err := e.add(&records[i%1000]); err != nil {
			b.Fatal(err)
		}
	}
}
