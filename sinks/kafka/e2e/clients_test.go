package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// payload is the JSON a publisher sends as message seq.
func payload(seq int) []byte {
	return fmt.Appendf(nil, `{"seq":%d,"temp":%d.5}`, seq, 20+seq%10)
}

// readAll consumes topics (regular expressions) from the start until at
// least want records arrived, then keeps reading until nothing new came
// for quiet, to catch duplicates and strays. It fails after timeout.
func readAll(t testing.TB, addr string, want int, quiet, timeout time.Duration, topics ...string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(timeout)
	lastNew := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if err != context.DeadlineExceeded {
				t.Logf("fetching %s/%d: %v", topic, p, err)
			}
		})
		if recs := fs.Records(); len(recs) > 0 {
			out = append(out, recs...)
			lastNew = time.Now()
		}
		if len(out) >= want && time.Since(lastNew) >= quiet {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d records from %v within %v", len(out), want, topics, timeout)
		}
	}
}
