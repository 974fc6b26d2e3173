// Package outcome turns the per-record outcomes of a sink's write into
// the error sinks.Sink.Write returns.
package outcome

import "github.com/sluicehq/sluice/sinks"

// Result returns nil when every errs[i] is nil; the one error every
// record shares when all failed with the same error value (a whole-batch
// failure reads best as one error); otherwise a *sinks.BatchError listing
// the failed records.
func Result(errs []error) error {
	var be sinks.BatchError
	for i, err := range errs {
		if err != nil {
			be.Failed = append(be.Failed, sinks.ItemError{Index: i, Err: err})
		}
	}
	if len(be.Failed) == 0 {
		return nil
	}
	if len(be.Failed) == len(errs) {
		first := be.Failed[0].Err
		same := true
		for _, f := range be.Failed[1:] {
			if f.Err != first {
				same = false
				break
			}
		}
		if same {
			return first
		}
	}
	return &be
}
