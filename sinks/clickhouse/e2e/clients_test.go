package e2e

import "fmt"

// payload is the JSON a publisher sends as message seq: the README rule
// reads temp, rpm and state from it. rpm carries seq, so the table shows
// which messages arrived; temp cycles through 20.5 .. 29.5, exact in a
// Float32.
func payload(seq int) []byte {
	return fmt.Appendf(nil, `{"rpm":%d,"state":"run","temp":%d.5}`, seq, 20+seq%10)
}
