package outcome

import (
	"errors"
	"testing"

	"github.com/sluicehq/sluice/sinks"
)

func TestResult(t *testing.T) {
	a, b := errors.New("a"), errors.New("b")
	tests := []struct {
		name      string
		errs      []error
		wantNil   bool
		wantSame  error
		wantBatch []int
	}{
		{name: "all fine", errs: []error{nil, nil}, wantNil: true},
		{name: "empty", errs: nil, wantNil: true},
		{name: "all same", errs: []error{a, a, a}, wantSame: a},
		{name: "all failed differently", errs: []error{a, b}, wantBatch: []int{0, 1}},
		{name: "some failed", errs: []error{nil, a, nil, b}, wantBatch: []int{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Result(tt.errs)
			switch {
			case tt.wantNil:
				if err != nil {
					t.Fatalf("Result = %v, want nil", err)
				}
			case tt.wantSame != nil:
				if err != tt.wantSame {
					t.Fatalf("Result = %v, want %v", err, tt.wantSame)
				}
			default:
				var be *sinks.BatchError
				if !errors.As(err, &be) || len(be.Failed) != len(tt.wantBatch) {
					t.Fatalf("Result = %v, want a BatchError of %v", err, tt.wantBatch)
				}
				for i, f := range be.Failed {
					if f.Index != tt.wantBatch[i] || f.Err != tt.errs[f.Index] {
						t.Fatalf("failed[%d] = %+v", i, f)
					}
				}
			}
		})
	}
}
